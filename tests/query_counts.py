"""What a page's query count depends on besides the page: the database it runs on."""

from django.db import connection

# On PostgreSQL the request's user is read together with its permissions
# (accounts/backends.py); on SQLite a page that checks a permission reads them separately.
PERMISSIONS_QUERY = 0 if connection.vendor == "postgresql" else 1
