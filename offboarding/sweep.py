"""The deadline sweep: reminders before a step falls due, escalations once it is overdue.

Each reminder and escalation is claimed with a conditional UPDATE on the case row — it
matches only while nothing has been sent for this activation of the step — and its
notifications are written in the same transaction. Two schedulers, a retried task or a
rerun therefore send each one exactly once; a scheduler that was down catches up because
the queries ask "owed by now", not "due in the last minute". Both queries read partial
indexes of the rows still owed something, so the cost follows the number falling due.
"""

import datetime as dt
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from offboarding import notices as notify

from .models import Case

BATCH = 500


@dataclass
class SweepResult:
    reminded: int = 0
    escalated: int = 0


def reminders_owed(now: dt.datetime):
    return Case.objects.filter(
        step_reminded_at__isnull=True, step_remind_at__isnull=False, step_remind_at__lte=now
    )


def escalations_owed(now: dt.datetime):
    return Case.objects.filter(
        step_escalated_at__isnull=True, step_due_at__isnull=False, step_due_at__lte=now
    )


def _claim(case_id, started_at, now, field) -> Case | None:
    claimed = Case.objects.filter(
        pk=case_id, step_started_at=started_at, **{f"{field}__isnull": True}
    ).update(**{field: now})
    if not claimed:
        return None
    return Case.objects.select_related("partner", "partner__cam").get(pk=case_id)


def run(now: dt.datetime | None = None) -> SweepResult:
    now = now or timezone.now()
    result = SweepResult()
    # Escalate first: a step found overdue needs no "falls due soon" reminder as well.
    # Oldest first, read along the partial index, so a backlog is worked in deadline order.
    overdue = escalations_owed(now).order_by("step_due_at")
    for case_id, started_at in overdue.values_list("pk", "step_started_at")[:BATCH]:
        with transaction.atomic():
            case = _claim(case_id, started_at, now, "step_escalated_at")
            if case is None:
                continue
            Case.objects.filter(pk=case_id, step_reminded_at__isnull=True).update(
                step_reminded_at=now
            )
            notify.step_escalation(case=case)
            result.escalated += 1
    due_soon = reminders_owed(now).order_by("step_remind_at")
    for case_id, started_at in due_soon.values_list("pk", "step_started_at")[:BATCH]:
        with transaction.atomic():
            case = _claim(case_id, started_at, now, "step_reminded_at")
            if case is None:
                continue
            notify.step_reminder(case=case)
            result.reminded += 1
    return result
