"""Authentication backend: Django's own, with a user's permissions read in one query."""

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group, Permission
from django.db.models import Q


class ModelBackendOneQuery(ModelBackend):
    """Django's ModelBackend, but a user's own and group permissions come from one query
    instead of two. Nearly every page checks a permission, so this saves a round trip per
    request; the rules (inactive users have none, superusers have all) are Django's."""

    def get_all_permissions(self, user_obj, obj=None):
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        if not hasattr(user_obj, "_perm_cache"):
            if user_obj.is_superuser:
                perms = Permission.objects.all()
            else:
                own = get_user_model().user_permissions.through.objects.filter(user=user_obj)
                grouped = Group.permissions.through.objects.filter(group__user=user_obj)
                perms = Permission.objects.filter(
                    Q(pk__in=own.values("permission")) | Q(pk__in=grouped.values("permission"))
                )
            user_obj._perm_cache = {
                f"{app_label}.{codename}"
                for app_label, codename in perms.values_list(
                    "content_type__app_label", "codename"
                ).order_by()
            }
        return user_obj._perm_cache
