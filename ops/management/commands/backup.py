"""Back up the database and the evidence files into one directory with a manifest.

    python manage.py backup                      # var/backups/partnerops-<UTC time>/
    python manage.py backup --output DIR         # a new or empty directory

PostgreSQL: `pg_dump --format=custom` (the client must be as new as the server; see
PARTNEROPS_PG_BIN_DIR), read from the same snapshot as the manifest's row counts. SQLite: a
copy by SQLite's online backup API. Then every evidence file. ops/backup.py describes the
layout. Exits with status 1 if an evidence file could not be read (the backup is written
and its manifest lists the missing files).
"""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from ops.backup import BackupError, backup
from ops.grants import OWNER_ALIAS


class Command(BaseCommand):
    help = "Back up the database and the evidence files, with a manifest of SHA-256 hashes."

    def add_arguments(self, parser):
        parser.add_argument("--output", help="a new or empty directory (default var/backups/…)")
        parser.add_argument(
            "--database",
            help="alias to read from (default: the owner's if DATABASE_OWNER_URL is set)",
        )

    def handle(self, *args, output=None, database=None, **options):
        alias = database or (OWNER_ALIAS if OWNER_ALIAS in settings.DATABASES else "default")
        if alias not in settings.DATABASES:
            raise CommandError(f"No database {alias!r}.")
        try:
            result = backup(output, alias)
        except BackupError as problem:
            raise CommandError(str(problem)) from None
        rows = result.manifest["rows"]
        figures = ", ".join(f"{rows[key]['count']} {key.replace('_', ' ')}" for key in rows)
        files = len(result.manifest["files"]) - 1
        self.stdout.write(f"Backup written to {result.path}: {figures}; {files} evidence file(s).")
        if result.missing_evidence:
            for name in result.missing_evidence:
                self.stdout.write(self.style.ERROR(f"evidence file missing from storage: {name}"))
            raise CommandError(
                f"{len(result.missing_evidence)} evidence file(s) could not be read; the backup "
                "lists them under missing_evidence (manage.py check_evidence).",
                returncode=1,
            )
        self.stdout.write(
            self.style.SUCCESS("Backup complete; verify it with: sha256sum -c SHA256SUMS")
        )
