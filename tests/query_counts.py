"""What a page's query count depends on besides the page."""

# Django's ModelBackend reads a user's own permissions and their groups' permissions in two
# queries, once per request, on the first permission check.
PERMISSIONS_QUERY = 2
