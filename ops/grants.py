"""The app's database role owns nothing (issue 15, item 7).

The owner (DATABASE_OWNER_URL, the `owner` alias) creates and alters the tables; the app
(DATABASE_URL, the `default` alias) may only read and write rows:

- SELECT, INSERT, UPDATE, DELETE on every table of the schema — not TRUNCATE (which skips
  row triggers: `manage.py flush` would empty the append-only events and payments), not
  REFERENCES or TRIGGER; and ALTER, DROP and DISABLE TRIGGER need ownership, which it lacks;
- only SELECT on django_migrations: the app reads which migrations ran, never records one;
- USAGE and SELECT on the sequences (identity columns draw ids from them);
- no CREATE on the schema, so it cannot own a table of its own either.

Rows it may delete or update are still refused by the triggers where history lives
(offboarding_caseevent, offboarding_evidencefile, payouts_payment).

`grant_app_role(owner_alias, app_role)` states all of that and is idempotent: run after
every migration (the post_migrate hook below, when migrating `--database owner`) and by
`manage.py grant_app_role`. PostgreSQL only: SQLite has no roles.
"""

from django.conf import settings
from django.db import connections, transaction

OWNER_ALIAS = "owner"
READ_ONLY_TABLES = ("django_migrations",)


class RoleError(Exception):
    """The roles are configured in a way that cannot be granted (a message for the user)."""


def quote(connection, name: str) -> str:
    return connection.ops.quote_name(name)


def app_role_name(app_alias: str = "default") -> str:
    user = settings.DATABASES[app_alias].get("USER") or ""
    if not user:
        raise RoleError(f"DATABASES[{app_alias!r}] names no user: DATABASE_URL needs one.")
    return user


def grant_statements(connection, app_role: str, owner_role: str) -> list[str]:
    role = quote(connection, app_role)
    owner = quote(connection, owner_role)
    statements = [
        # Before PostgreSQL 15 every role may create tables in public: take that away.
        "REVOKE CREATE ON SCHEMA public FROM PUBLIC",
        f"REVOKE ALL ON SCHEMA public FROM {role}",
        f"GRANT USAGE ON SCHEMA public TO {role}",
        f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}",
        f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {role}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}",
        # Tables a later migration creates are the app's to use at once, before the grant
        # after that migration runs (a web process started in between would fail).
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public "
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {role}",
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public "
        f"GRANT USAGE, SELECT ON SEQUENCES TO {role}",
    ]
    existing = set(connection.introspection.table_names())
    for table in READ_ONLY_TABLES:
        if table in existing:
            name = quote(connection, table)
            statements.append(f"REVOKE INSERT, UPDATE, DELETE ON {name} FROM {role}")
    return statements


def grant_app_role(owner_alias: str = OWNER_ALIAS, app_role: str | None = None) -> list[str]:
    """Grant `app_role` (default: DATABASE_URL's user) its rights, connected as the owner."""
    connection = connections[owner_alias]
    if connection.vendor != "postgresql":
        raise RoleError("Database roles are PostgreSQL's: SQLite has no roles to grant.")
    app_role = app_role or app_role_name()
    # One transaction: the app never sees the moment between a REVOKE and its GRANT.
    with transaction.atomic(using=owner_alias), connection.cursor() as cursor:
        cursor.execute("SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user")
        owner_role, _ = cursor.fetchone()
        if owner_role == app_role:
            raise RoleError(
                f"The app role {app_role!r} is the owner: set DATABASE_URL to a role of its "
                "own (manage.py create_app_role) and DATABASE_OWNER_URL to the owner."
            )
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [app_role])
        if cursor.fetchone() is None:
            raise RoleError(
                f"There is no role {app_role!r}: create it first (manage.py create_app_role)."
            )
        statements = grant_statements(connection, app_role, owner_role)
        for statement in statements:
            cursor.execute(statement)
    return statements


def create_app_role(
    owner_alias: str = OWNER_ALIAS, app_role: str | None = None, password: str | None = None
) -> bool:
    """Create the app's login role (no superuser, no CREATEDB/CREATEROLE, no BYPASSRLS), or
    reset an existing one to that and the password. True if it was created."""
    connection = connections[owner_alias]
    if connection.vendor != "postgresql":
        raise RoleError("Database roles are PostgreSQL's: SQLite has no roles to create.")
    app_role = app_role or app_role_name()
    if password is None:
        password = settings.DATABASES["default"].get("PASSWORD") or ""
    role = quote(connection, app_role)
    attributes = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        if cursor.fetchone()[0] == app_role:
            raise RoleError(f"The owner and the app role are both {app_role!r}.")
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [app_role])
        created = cursor.fetchone() is None
        verb = "CREATE" if created else "ALTER"
        if password:
            # A role name cannot be a parameter, a password can.
            cursor.execute(f"{verb} ROLE {role} {attributes} PASSWORD %s", [password])
        else:
            cursor.execute(f"{verb} ROLE {role} {attributes}")
    return created


def grant_after_migrate(sender, using, **kwargs):
    """After `migrate --database owner`, grant the app role its rights on what now exists."""
    if using != OWNER_ALIAS or connections[using].vendor != "postgresql":
        return
    from django.core.management.base import CommandError

    verbosity = kwargs.get("verbosity", 1)
    try:
        statements = grant_app_role(using)
    except RoleError as problem:
        # The migrations are applied; `migrate` ends with this message, not a traceback.
        raise CommandError(f"Migrated, but not granted: {problem}") from None
    if verbosity >= 1:
        print(f"  Granted {app_role_name()!r} row access only ({len(statements)} statements).")
