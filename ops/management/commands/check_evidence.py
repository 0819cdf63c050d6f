"""Report evidence files missing from storage or altered since they were recorded.

    python manage.py check_evidence            # every file
    python manage.py check_evidence --case 42  # one case's

Each file is read and its SHA-256 compared with the one its event recorded
(`evidence_digests`); files of events sealed before digests were kept are compared by size
only. Prints a line per bad file, then a summary; exits with status 1 if any is missing or
altered.
"""

from django.core.management.base import BaseCommand, CommandError

from ops.evidence import check_evidence


class Command(BaseCommand):
    help = "Check every evidence file against the size and SHA-256 its event recorded."

    def add_arguments(self, parser):
        parser.add_argument("--case", type=int, dest="case_id", help="check this case only")

    def handle(self, *args, case_id=None, **options):
        report = check_evidence(case_id)
        for problem in report.problems:
            self.stdout.write(self.style.ERROR(problem.describe()))
        size_only = report.checked - report.with_digest
        summary = (
            f"{report.checked} evidence file(s) checked ({report.with_digest} by SHA-256, "
            f"{size_only} by size only)"
        )
        if report.problems:
            missing = sum(p.problem == "missing" for p in report.problems)
            raise CommandError(
                f"{summary}: {missing} missing, {len(report.problems) - missing} altered.",
                returncode=1,
            )
        self.stdout.write(self.style.SUCCESS(f"{summary}: every file is as recorded."))
