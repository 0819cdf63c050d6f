"""Authentication backend: Django's own, with a user's permissions read in one query."""

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.db import connection


def _permissions_sql() -> str:
    """A user's own and group permissions as (app_label, codename). Written as SQL because
    the ORM spent twice the database's time building this query on every request."""
    user_model = get_user_model()
    own = user_model.user_permissions.through._meta.db_table
    memberships = user_model.groups.through._meta.db_table
    grouped = Group.permissions.through._meta.db_table
    return (
        f"SELECT ct.app_label, p.codename FROM {Permission._meta.db_table} p "
        f"JOIN {ContentType._meta.db_table} ct ON ct.id = p.content_type_id "
        f"WHERE p.id IN (SELECT permission_id FROM {own} WHERE user_id = %s "
        f"UNION SELECT gp.permission_id FROM {grouped} gp "
        f"JOIN {memberships} ug ON ug.group_id = gp.group_id WHERE ug.user_id = %s)"
    )


class ModelBackendOneQuery(ModelBackend):
    """Django's ModelBackend, but a user's own and group permissions come from one query
    instead of two. Nearly every page checks a permission, so this saves a round trip per
    request; the rules (inactive users have none, superusers have all) are Django's.

    Its answer is final: a refusal raises PermissionDenied, which stops Django asking the
    backends listed after it. Django's own ModelBackend stays listed after this one only so
    that sessions signed in through it (before this backend existed) stay signed in.
    """

    def get_all_permissions(self, user_obj, obj=None):
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        if not hasattr(user_obj, "_perm_cache"):
            if user_obj.is_superuser:
                rows = Permission.objects.values_list("content_type__app_label", "codename")
            else:
                with connection.cursor() as cursor:
                    cursor.execute(_permissions_sql(), [user_obj.pk, user_obj.pk])
                    rows = cursor.fetchall()
            user_obj._perm_cache = {f"{app_label}.{codename}" for app_label, codename in rows}
        return user_obj._perm_cache

    def has_perm(self, user_obj, perm, obj=None):
        if super().has_perm(user_obj, perm, obj=obj):
            return True
        raise PermissionDenied

    def has_module_perms(self, user_obj, app_label):
        if super().has_module_perms(user_obj, app_label):
            return True
        raise PermissionDenied
