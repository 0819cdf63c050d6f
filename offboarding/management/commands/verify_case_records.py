"""Check the hash chain of every case's history (offboarding.case_chain).

    python manage.py verify_case_records             # every case, evidence bytes included
    python manage.py verify_case_records --case 42   # one case
    python manage.py verify_case_records --no-files  # rows only: do not read evidence files

Prints a line per broken case, naming the case, the first broken event and why (content
altered, link broken, evidence altered, history cut short), then a summary. Exits with
status 1 when any case is broken, 0 otherwise. Events are read as a stream, case by case.
"""

from django.core.management.base import BaseCommand, CommandError

from offboarding.case_chain import verify_case
from offboarding.models import Case


class Command(BaseCommand):
    help = "Verify the tamper-evident hash chain of each case's history; name the first break."

    def add_arguments(self, parser):
        parser.add_argument("--case", type=int, dest="case_id", help="verify this case only")
        parser.add_argument(
            "--no-files",
            action="store_true",
            help="do not read the evidence files' bytes (their rows are still checked)",
        )

    def handle(self, *args, case_id=None, no_files=False, **options):
        cases = Case.objects.order_by("pk").values_list("pk", "state")
        if case_id is not None:
            cases = cases.filter(pk=case_id)
            if not cases.exists():
                raise CommandError(f"There is no case {case_id}.")
        checked = broken = events = 0
        for pk, state in cases.iterator(1000):
            result = verify_case(pk, state, check_files=not no_files)
            checked += 1
            events += result.events
            if result.intact:
                if options["verbosity"] >= 2:
                    self.stdout.write(f"case {pk}: intact, {result.events} events")
                continue
            broken += 1
            self.stdout.write(self.style.ERROR(f"case {pk}: {result.broken.describe()}"))
        files = "rows only" if no_files else "evidence bytes checked"
        if broken:
            raise CommandError(
                f"{broken} of {checked} case record(s) broken ({events} events; {files}).",
                returncode=1,
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"{checked} case record(s) verified, {events} events: every chain is intact "
                f"({files})."
            )
        )
