"""Who hears about what happens on a case: the step's performers, the people an escalation
or an override concerns. Called inside the transaction of the event reported, through
`notifications.services.send` (the outbox)."""

from django.utils import timezone

from notifications.models import NotificationKind
from notifications.services import managers, send, users_with_permission

from .process import LANE_PERMISSION, OWNER_LANES


def step_performers(case):
    """The people whose job the case's active step is."""
    step = case.current_step
    if step is None:
        return []
    if step.lane in OWNER_LANES:
        cam = case.partner.cam
        return [cam] if cam is not None and cam.is_active else []
    users = users_with_permission(LANE_PERMISSION[step.lane])
    if step.four_eyes:  # Decision B: who paid on the case cannot verify it
        users = users.exclude(pk__in=case.payments.values("recorded_by"))
    return list(users)


def _label(case):
    step = case.current_step
    return f"Step {step.number} · {step.title} — {case.partner}"


def step_activated(*, case, actor):
    """The active step is now somebody's job: tell them (not the person who just acted)."""
    step = case.current_step
    send(
        [user for user in step_performers(case) if user.pk != actor.pk],
        kind=NotificationKind(step.notification_kind),
        case=case,
        title=_label(case),
        body=step.summary,
    )


def step_reminder(*, case):
    due = timezone.localtime(case.step_due_at)
    send(
        step_performers(case),
        kind=NotificationKind.REMINDER,
        case=case,
        title=f"Due {due:%a %d %b %H:%M}: {_label(case)}",
        body=case.current_step.summary,
    )


def step_escalation(*, case):
    due = timezone.localtime(case.step_due_at)
    performers = step_performers(case)
    names = ", ".join(user.get_full_name() or user.get_username() for user in performers)
    send(
        [*managers(), case.partner.cam],
        kind=NotificationKind.ESCALATION,
        case=case,
        title=f"Overdue since {due:%a %d %b %H:%M}: {_label(case)}",
        body=f"Waiting for {case.current_step.lane.label}: {names or 'nobody holds this role'}.",
    )


def case_opened(*, case, actor):
    send(
        [u for u in managers() if u.pk != actor.pk],
        kind=NotificationKind.CASE_OPENED,
        case=case,
        title=f"Offboarding opened for {case.partner}",
        body=f"Opened by {actor.get_full_name() or actor.get_username()}.",
    )


def case_withdrawn(*, case, actor):
    send(
        [u for u in [*managers(), case.partner.cam] if u is not None and u.pk != actor.pk],
        kind=NotificationKind.CASE_WITHDRAWN,
        case=case,
        title=f"Offboarding withdrawn for {case.partner}",
        body=case.withdrawal_reason,
    )


def case_closed(*, case, actor):
    send(
        [u for u in [*managers(), case.partner.cam] if u is not None and u.pk != actor.pk],
        kind=NotificationKind.CASE_CLOSED,
        case=case,
        title=f"{case.partner} is offboarded",
        body=f"Offboard date {case.offboard_date}.",
    )


def record_corrected(*, case, actor, what: str, reason: str):
    """The partner record changed under an open case: its CAM and whoever holds the active
    step see what the case now follows."""
    send(
        [
            u
            for u in [case.partner.cam, *step_performers(case)]
            if u is not None and u.pk != actor.pk
        ],
        kind=NotificationKind.RECORD_CORRECTED,
        case=case,
        title=f"Partner record corrected — {case.partner}",
        body=f"{what}. Reason: {reason}",
    )


def override_requested(*, override, actor, approvers):
    """A second CAR user must approve a payment after the offboard date (Decision D)."""
    send(
        [u for u in approvers if u.pk != actor.pk],
        kind=NotificationKind.OVERRIDE_TO_APPROVE,
        case=override.case,
        title=f"Override to approve — {override.partner}",
        body=f"{override.describe()}. Reason: {override.reason}",
    )


def override_decided(*, override, actor):
    verdict = "approved" if override.approved_by_id else "refused"
    send(
        [override.requested_by] if override.requested_by_id != actor.pk else [],
        kind=NotificationKind.OVERRIDE_DECIDED,
        case=override.case,
        title=f"Override {verdict} — {override.partner}",
        body=f"{override.describe()}. {verdict.capitalize()} by "
        f"{actor.get_full_name() or actor.get_username()}.",
    )
