from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from offboarding.money.importers import COLUMNS, ImportRejected, import_csv


class Command(BaseCommand):
    help = "Import commissions, open orders or payouts from a CSV file (all or nothing)."

    def add_arguments(self, parser):
        parser.add_argument("kind", choices=sorted(COLUMNS))
        parser.add_argument("path", type=Path)

    def handle(self, *args, kind, path, **options):
        try:
            content = path.read_bytes()
        except OSError as error:
            raise CommandError(f"Cannot read {path}: {error.strerror}.") from None
        try:
            report = import_csv(kind, content)
        except ImportRejected as rejected:
            for line, message in rejected.report.errors:
                self.stderr.write(f"line {line}: {message}")
            raise CommandError(rejected.report.summary()) from None
        self.stdout.write(report.summary())
