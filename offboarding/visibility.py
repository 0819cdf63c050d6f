"""The cases a user may see, as querysets: `access.sees_all_cases` applied to the database.

Every page, export and admin list loads cases through here, so a case a user may not see
answers 404, never 403 (ids do not leak)."""

from django.http import Http404

from .access import sees_all_cases
from .models import Case


def visible_cases(user, queryset=None):
    queryset = Case.objects.all() if queryset is None else queryset
    if not (user.is_authenticated and user.is_active):
        return queryset.none()
    if sees_all_cases(user):
        return queryset
    if user.has_perm("offboarding.view_case"):
        return queryset.filter(partner__cam=user)
    return queryset.none()


def get_case_for(user, pk, queryset=None):
    """The case `pk` if `user` may see it; a 404 otherwise, so ids do not leak."""
    cases = visible_cases(user, queryset)
    try:
        return cases.get(pk=pk)
    except (ValueError, TypeError, cases.model.DoesNotExist):
        raise Http404("No such case.") from None
