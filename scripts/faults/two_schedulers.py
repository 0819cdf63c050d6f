"""Fault: two Celery beat processes at once.

Both schedule the deadline sweep every 2 s against one worker pool of four, so sweeps run
side by side. In each round every open case is made owed something — half a reminder (due
soon), half an escalation (overdue) — and, as the two schedulers would, the daily digest task
is sent twice at the same moment (its own 15-minute period is longer than this run; the
digest hour is set to midnight so today's digests are due on a business day). Afterwards:
each reminder and escalation exactly once per recipient, case and round, every owed case
claimed, one digest per person and day.
"""

import datetime as dt
import sys
import time
from collections import Counter

from stack import Stack, report, size_args

ENV = {
    "PARTNEROPS_SWEEP_EVERY_SECONDS": "2",
    "PARTNEROPS_RELAY_EVERY_SECONDS": "5",
    "PARTNEROPS_DIGEST_HOUR": "0",
}


def main():
    args = size_args(__doc__).parse_args()
    rounds, round_s = (2, 10) if args.small else (6, 15)
    stack = Stack(
        "beat",
        http_port=args.http_port,
        smtp_port=args.smtp_port,
        redis_port=args.redis_port,
        extra_env=ENV,
    )
    with stack:
        stack.prepare_database()
        stack.start_redis()
        stack.start_smtp()
        stack.start_worker(concurrency=4)
        stack.start_beat("beat1", loglevel="info")
        stack.start_beat("beat2", loglevel="info")
        stack.django()
        from django.db.models import Max
        from django.utils import timezone

        from notifications.models import Notification, NotificationKind
        from offboarding.models import Case
        from offboarding.process import OPEN_STATES
        from offboarding.sweep import escalations_owed, reminders_owed
        from offboarding.tasks import send_daily_digests

        kinds = (NotificationKind.REMINDER, NotificationKind.ESCALATION)
        # What the seed left owed (its overdue case) is swept first, before any round
        # counts: those rows belong to no round.
        stack.wait_for(
            "the first sweeps",
            lambda: (
                not (
                    reminders_owed(timezone.now()).exists()
                    or escalations_owed(timezone.now()).exists()
                )
            ),
            seconds=60,
        )
        time.sleep(3)
        reminders = escalations = duplicated = missed = 0
        owed_total = 0
        for index in range(rounds):
            start_pk = Notification.objects.aggregate(m=Max("pk"))["m"] or 0
            now = timezone.now()
            open_cases = list(
                Case.objects.filter(state__in=OPEN_STATES)
                .order_by("pk")
                .values_list("pk", flat=True)
            )
            soon, overdue = open_cases[index % 2 :: 2], open_cases[(index + 1) % 2 :: 2]
            # A fresh activation of each step, so this round owes its own reminder/escalation.
            Case.objects.filter(pk__in=soon).update(
                step_started_at=now - dt.timedelta(hours=2),
                step_remind_at=now - dt.timedelta(minutes=1),
                step_due_at=now + dt.timedelta(hours=1),
                step_reminded_at=None,
                step_escalated_at=None,
            )
            Case.objects.filter(pk__in=overdue).update(
                step_started_at=now - dt.timedelta(days=3, seconds=index),
                step_remind_at=now - dt.timedelta(days=2),
                step_due_at=now - dt.timedelta(minutes=1),
                step_reminded_at=None,
                step_escalated_at=None,
            )
            owed_total += len(open_cases)
            # The digest, emitted by both schedulers at the same moment.
            send_daily_digests.apply_async()
            send_daily_digests.apply_async()
            time.sleep(round_s)
            missed += Case.objects.filter(pk__in=soon, step_reminded_at__isnull=True).count()
            missed += Case.objects.filter(pk__in=overdue, step_escalated_at__isnull=True).count()
            rows = Notification.objects.filter(pk__gt=start_pk, kind__in=kinds)
            per_effect = Counter(rows.values_list("recipient_id", "case_id", "kind"))
            for (recipient, case, kind), count in per_effect.items():
                if count > 1:
                    duplicated += count - 1
                    titles = list(
                        rows.filter(recipient_id=recipient, case_id=case, kind=kind).values_list(
                            "pk", "created_at", "title"
                        )
                    )
                    print(
                        f"round {index}: {count} {kind} rows for user {recipient}, case {case}: "
                        f"{titles}",
                        file=sys.stderr,
                    )
            reminders += rows.filter(kind=NotificationKind.REMINDER).count()
            escalations += rows.filter(kind=NotificationKind.ESCALATION).count()

        digests = Counter(
            Notification.objects.filter(kind=NotificationKind.DAILY_DIGEST).values_list(
                "recipient_id", "digest_day"
            )
        )
        duplicated += sum(count - 1 for count in digests.values() if count > 1)
        sweeps = {
            name: (stack.work / f"{name}.log").read_text().count("sweep-deadlines")
            for name in ("beat1", "beat2")
        }
        both_alive = stack.alive("beat1") and stack.alive("beat2")
        figures = {
            "rounds": rounds,
            "owed": owed_total,
            "reminders": reminders,
            "escalations": escalations,
            "digests": len(digests),
            "duplicated": duplicated,
            "missed": missed,
            "sweeps_beat1": sweeps["beat1"],
            "sweeps_beat2": sweeps["beat2"],
        }
        failures = []
        if duplicated:
            failures.append(f"{duplicated} duplicate reminder/escalation/digest row(s)")
        if missed:
            failures.append(f"{missed} owed reminder/escalation(s) never claimed")
        if not both_alive or min(sweeps.values()) < 2:
            failures.append(f"both schedulers did not run the sweep: {sweeps}, alive={both_alive}")
        if failures:
            stack.tail_logs()
        raise SystemExit(report("two_schedulers", figures, failures))


if __name__ == "__main__":
    main()
