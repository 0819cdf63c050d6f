"""While `migrate --database owner` runs, the default alias is the owner's connection too.

Data migrations and the signal handlers they call are written for the default alias
(`apps.get_model(...).objects`, accounts.roles.sync_roles, which creates permissions with
Django's default `using`), and the default alias is the app role: it may not write a fresh
schema's rows before the grant, and must never be the one that alters tables. So on the
pre_migrate signal for the owner alias this process's default alias becomes the owner's
connection — the same connection object, so every transaction is one — for the rest of the
process, which is a migrate process and ends with it. Any other process is untouched.
"""

from django.db import connections

from .grants import OWNER_ALIAS


def default_is_owner(sender=None, using=None, **kwargs):
    if using != OWNER_ALIAS or connections["default"] is connections[OWNER_ALIAS]:
        return
    connections["default"].close()
    connections["default"] = connections[OWNER_ALIAS]
