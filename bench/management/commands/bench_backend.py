"""Time the deadline sweep and the service path on the benchmark database (`make bench`).

Refuses any database whose name does not contain "bench": the service path commits new
partners and cases.
"""

import json

from django.core.management.base import BaseCommand, CommandError

from bench.data import database_name
from bench.timings import time_service_path, time_sweep


class Command(BaseCommand):
    help = "Time the deadline sweep (none due, 1% due) and the 13-step service path."

    def add_arguments(self, parser):
        parser.add_argument("--sweep-open", type=int, default=100_000, help="open steps")
        parser.add_argument("--sweep-repeats", type=int, default=7)
        parser.add_argument("--service-cases", type=int, default=20)
        parser.add_argument("--json", help="write the results to this file")

    def handle(self, *args, **options):
        name = database_name()
        if "bench" not in name:
            raise CommandError(
                f"Refusing to run the back-end benchmark on the database {name!r}: its name "
                "must contain 'bench'."
            )
        self.stdout.write(f"Sweep with {options['sweep_open']:,} open steps (rolled back)...")
        sweep = time_sweep(options["sweep_open"], repeats=options["sweep_repeats"])
        self.stdout.write(
            f"  none due: median {sweep['none_due']['median_ms']} ms; "
            f"1% due ({sweep['one_percent_due']['due']}): "
            f"{sweep['one_percent_due']['total_ms']} ms in "
            f"{len(sweep['one_percent_due']['passes'])} passes"
        )
        self.stdout.write(f"Service path: {options['service_cases']} cases to Done...")
        service = time_service_path(options["service_cases"])
        self.stdout.write(
            f"  {service['cases_per_s']} cases/s, {service['median_ms_per_case']} ms per case"
        )
        if options["json"]:
            with open(options["json"], "w") as handle:
                json.dump({"sweep": sweep, "service_path": service}, handle, indent=2)
