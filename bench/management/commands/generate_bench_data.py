"""Fill a separate PostgreSQL database with the benchmark's data set (see bench.data).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/partnerops_bench \\
        python manage.py generate_bench_data --partners 20000 --seed 1

Refuses any database whose name does not contain "bench", so it can never write into the
application's own database.
"""

import argparse
import datetime as dt

from django.core.management.base import BaseCommand, CommandError

from bench.data import BenchDataError, Sizes, database_name, generate, read_meta


def _moment(text: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO 8601 date and time (e.g. 2026-11-24T12:00+00:00)"
        ) from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no time zone; add one (e.g. +00:00 or Z)")
    return moment


class Command(BaseCommand):
    help = "Generate the large, seeded benchmark data set into a *bench* PostgreSQL database."

    def add_arguments(self, parser):
        defaults = Sizes()
        for name, help_text in (
            ("partners", "partners (spread over 60 CAMs)"),
            ("closed_cases", "closed cases (done or withdrawn), with full histories"),
            ("open_cases", "open cases, spread over steps 2-13, some overdue"),
            ("commissions", "commission lines"),
            ("payouts", "payouts (their payments come with them)"),
            ("notifications", "notifications"),
            ("long_history", "events of the long-history case"),
            ("statement_lines", "payout lines on the big final statement"),
            ("cam_partners", "partners of the user `cam`, per 20,000 partners"),
            ("seed", "random seed"),
        ):
            parser.add_argument(
                f"--{name.replace('_', '-')}",
                type=int,
                default=getattr(defaults, name),
                help=f"{help_text} (default {getattr(defaults, name)})",
            )
        parser.add_argument(
            "--now",
            type=_moment,
            default=None,
            help="the moment every date and time is counted from, ISO 8601 with a time zone "
            "(e.g. 2026-11-24T12:00+00:00); default: now. The same seed and moment give the "
            "same data set.",
        )
        parser.add_argument(
            "--if-missing",
            action="store_true",
            help="Do nothing if the database already holds a data set of these sizes.",
        )

    def handle(self, *args, **options):
        name = database_name()
        if "bench" not in name:
            raise CommandError(
                f"Refusing to generate benchmark data into the database {name!r}: its name "
                "must contain 'bench' (e.g. partnerops_bench). Point DATABASE_URL at a "
                "separate benchmark database."
            )
        sizes = Sizes(**{key: options[key] for key in Sizes().as_dict()})
        existing = read_meta()
        if existing is not None:
            if options["if_missing"] and existing.get("sizes") == sizes.as_dict():
                self.stdout.write(
                    f"{name} already holds the data set for these sizes "
                    f"(generated {existing.get('generated_at')}); nothing to do."
                )
                return
            raise CommandError(
                f"{name} already holds a data set ({existing.get('sizes')}); drop and "
                "re-create the database to generate another."
            )
        self.stdout.write(f"Generating into {name}: {sizes.as_dict()}")
        try:
            meta = generate(sizes, out=self.stdout.write, now=options["now"])
        except BenchDataError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(
            self.style.SUCCESS(f"Data set ready in {meta['seconds']} s: {meta['counts']}")
        )
