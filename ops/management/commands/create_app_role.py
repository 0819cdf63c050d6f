"""Create the login role the app connects as, for a fresh PostgreSQL database.

    DATABASE_URL=postgres://partnerops_app:SECRET@host/db \\
    DATABASE_OWNER_URL=postgres://partnerops:OWNER_SECRET@host/db \\
    python manage.py create_app_role          # then: python manage.py migrate --database owner

Connected as the owner (the `owner` alias, or `--database`), it creates DATABASE_URL's user
with DATABASE_URL's password — a login role without superuser, CREATEDB, CREATEROLE or
BYPASSRLS — or resets an existing one to exactly that. The owner needs CREATEROLE (or to be
a superuser). Run it before `migrate --database owner`, which grants the role its rights.
"""

from django.core.management.base import BaseCommand, CommandError

from ops.grants import OWNER_ALIAS, RoleError, app_role_name, create_app_role, grant_app_role


class Command(BaseCommand):
    help = "Create (or reset) the app's database role, which owns nothing. PostgreSQL only."

    def add_arguments(self, parser):
        parser.add_argument("--database", default=OWNER_ALIAS, help="the owner's alias")
        parser.add_argument("--role", help="role name (default: DATABASE_URL's user)")
        parser.add_argument(
            "--grant", action="store_true", help="also grant it row access to existing tables"
        )

    def handle(self, *args, database, role=None, grant=False, **options):
        from django.conf import settings

        if database not in settings.DATABASES:
            raise CommandError(
                f"No database {database!r}: set DATABASE_OWNER_URL to the owner's postgres:// URL."
            )
        try:
            role = role or app_role_name()
            created = create_app_role(database, role)
            if grant:
                grant_app_role(database, role)
        except RoleError as problem:
            raise CommandError(str(problem)) from None
        done = "Created" if created else "Reset"
        self.stdout.write(self.style.SUCCESS(f"{done} the app role {role!r}."))
