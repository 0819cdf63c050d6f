"""Restore a backup (manage.py backup) into an empty database and evidence storage.

    python manage.py restore var/backups/partnerops-20260101T000000Z
    python manage.py restore DIR --media-root /srv/partnerops/media

Verifies every file against the manifest first and refuses a damaged backup, changing
nothing. The database (DATABASE_OWNER_URL's when set, else DATABASE_URL's) must have no
tables: create it empty; a restore never merges. Then the evidence files go back into the
storage (MEDIA_ROOT, or --media-root), the app role is granted its rights (when the owner
restored), and the restored cases, events, payments and evidence rows are compared with the
manifest's fingerprint. `--verify-only` checks the backup and stops.
"""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from ops.backup import BackupError, restore, verify_backup
from ops.grants import OWNER_ALIAS


class Command(BaseCommand):
    help = "Verify a backup's manifest, then restore it into an empty database and storage."

    def add_arguments(self, parser):
        parser.add_argument("backup", help="the backup directory")
        parser.add_argument("--media-root", help="restore evidence files here, not MEDIA_ROOT")
        parser.add_argument("--database", help="alias to restore into (default: owner if set)")
        parser.add_argument("--verify-only", action="store_true", help="check the backup only")

    def handle(self, *args, backup, media_root=None, database=None, verify_only=False, **opts):
        alias = database or (OWNER_ALIAS if OWNER_ALIAS in settings.DATABASES else "default")
        if alias not in settings.DATABASES:
            raise CommandError(f"No database {alias!r}.")
        try:
            if verify_only:
                manifest = verify_backup(backup)
                self.stdout.write(
                    self.style.SUCCESS(
                        f"{backup}: intact, {len(manifest['files'])} file(s) as the manifest says."
                    )
                )
                return
            grant = alias if alias == OWNER_ALIAS else None
            rows = restore(backup, alias, media_root=media_root, grant_alias=grant)
        except BackupError as problem:
            raise CommandError(str(problem)) from None
        figures = ", ".join(f"{rows[key]['count']} {key.replace('_', ' ')}" for key in rows)
        self.stdout.write(
            self.style.SUCCESS(f"Restored {backup}: {figures}, each equal to the manifest's.")
        )
