"""Grant the app's role row access only (ops/grants.py says exactly what), as the owner.

    python manage.py grant_app_role                 # owner alias, DATABASE_URL's user
    python manage.py grant_app_role --role NAME --database owner

`migrate --database owner` runs this by itself afterwards; run it by hand after a restore or
if tables were created some other way. Idempotent. PostgreSQL only: SQLite has no roles.
"""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from ops.grants import OWNER_ALIAS, RoleError, app_role_name, grant_app_role


class Command(BaseCommand):
    help = "Grant the app role SELECT/INSERT/UPDATE/DELETE and sequence USAGE only."

    def add_arguments(self, parser):
        parser.add_argument("--database", default=OWNER_ALIAS, help="the owner's alias")
        parser.add_argument("--role", help="role name (default: DATABASE_URL's user)")

    def handle(self, *args, database, role=None, **options):
        if database not in settings.DATABASES:
            raise CommandError(
                f"No database {database!r}: set DATABASE_OWNER_URL to the owner's postgres:// URL."
            )
        try:
            role = role or app_role_name()
            statements = grant_app_role(database, role)
        except RoleError as problem:
            raise CommandError(str(problem)) from None
        if options["verbosity"] >= 2:
            for statement in statements:
                self.stdout.write(f"  {statement};")
        self.stdout.write(
            self.style.SUCCESS(f"Granted {role!r} row access only ({len(statements)} statements).")
        )
