"""Authentication backend: Django's own, with a user's permissions read in one query, and
on PostgreSQL read together with the user at the start of each request."""

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection


def _permissions_sql() -> str:
    """A user's own and group permissions as (app_label, codename). Written as SQL because
    the ORM spent twice the database's time building this query on every request."""
    user_model = get_user_model()
    return (
        f"SELECT ct.app_label, p.codename FROM {Permission._meta.db_table} p "
        f"JOIN {ContentType._meta.db_table} ct ON ct.id = p.content_type_id "
        f"WHERE p.id IN ({_granted_ids_sql(user_model)})"
    )


def _granted_ids_sql(user_model) -> str:
    own = user_model.user_permissions.through._meta.db_table
    memberships = user_model.groups.through._meta.db_table
    grouped = Group.permissions.through._meta.db_table
    return (
        f"SELECT permission_id FROM {own} WHERE user_id = %s "
        f"UNION SELECT gp.permission_id FROM {grouped} gp "
        f"JOIN {memberships} ug ON ug.group_id = gp.group_id WHERE ug.user_id = %s"
    )


def _user_with_permissions_sql() -> str:
    """The user's row plus an array of its permission names, for PostgreSQL."""
    user_model = get_user_model()
    return (
        f"SELECT u.*, ARRAY(SELECT ct.app_label || '.' || p.codename "
        f"FROM {Permission._meta.db_table} p "
        f"JOIN {ContentType._meta.db_table} ct ON ct.id = p.content_type_id "
        f"WHERE p.id IN ({_granted_ids_sql(user_model)})) AS granted_permissions "
        f"FROM {user_model._meta.db_table} u WHERE u.{user_model._meta.pk.column} = %s"
    )


class ModelBackendOneQuery(ModelBackend):
    """Django's ModelBackend, but a user's own and group permissions come from one query
    instead of two. Nearly every page checks a permission, so this saves a round trip per
    request; the rules (inactive users have none, superusers have all) are Django's.

    Its answer is final: a refusal raises PermissionDenied, which stops Django asking the
    backends listed after it. Django's own ModelBackend stays listed after this one only so
    that sessions signed in through it (before this backend existed) stay signed in.

    On PostgreSQL, the user that a request's session names is read with its permissions in
    the same query, so a page that checks a permission costs no round trip for it.
    """

    def get_user(self, user_id):
        if connection.vendor != "postgresql":
            return super().get_user(user_id)
        user_model = get_user_model()
        try:
            pk = user_model._meta.pk.to_python(user_id)
        except ValidationError:
            return None
        found = list(user_model._default_manager.raw(_user_with_permissions_sql(), [pk, pk, pk]))
        if not found or not self.user_can_authenticate(found[0]):
            return None
        user = found[0]
        if not user.is_superuser:
            # What get_all_permissions would read; a superuser's (all) stays read on demand.
            user._perm_cache = set(user.granted_permissions)
        return user

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
