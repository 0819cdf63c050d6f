"""Who hears about what. Called inside the transaction of the event being reported, so a
notification exists exactly when its event does (a transactional outbox)."""

import logging

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from offboarding.process import LANE_PERMISSION, OWNER_LANES

from .models import Delivery, EmailStatus, Notification, NotificationKind, NotificationPreference

logger = logging.getLogger(__name__)

_STATUS_FOR_DELIVERY = {
    Delivery.IMMEDIATE: EmailStatus.PENDING,
    Delivery.DIGEST: EmailStatus.IN_DIGEST,
    Delivery.IN_APP: EmailStatus.NOT_EMAILED,
}


def users_with_permission(permission: str):
    app_label, codename = permission.split(".")
    via_group = Q(
        groups__permissions__codename=codename,
        groups__permissions__content_type__app_label=app_label,
    )
    direct = Q(
        user_permissions__codename=codename,
        user_permissions__content_type__app_label=app_label,
    )
    return get_user_model().objects.filter(via_group | direct, is_active=True).distinct()


def managers():
    return get_user_model().objects.filter(groups__name="Partner-ops manager", is_active=True)


def enqueue_delivery(notification_ids, *, probe: bool = False) -> None:
    """Hand rows to the worker. A broker outage only delays them: the rows stay pending and
    the relay finds them. `broker.publish` never waits more than its short timeout, and not at
    all while its breaker is open, so a request that notifies someone is not held up; the
    relay passes `probe` to try the broker anyway."""
    from . import broker
    from .tasks import deliver_email

    for index, notification_id in enumerate(notification_ids):
        if not broker.publish(deliver_email, (notification_id,), probe=probe and index == 0):
            logger.info(
                "Broker skipped; %d notification(s) left to the relay.",
                len(notification_ids) - index,
            )
            return


def send(recipients, *, kind, case=None, title, body="", digest_day=None):
    """Create one notification per distinct recipient, emailed as each of them prefers."""
    unique = {user.pk: user for user in recipients if user is not None}
    if not unique:
        return []
    preferences = dict(
        NotificationPreference.objects.filter(user__in=unique, kind=kind).values_list(
            "user_id", "delivery"
        )
    )
    now = timezone.now()
    rows = []
    for user in unique.values():
        status = _STATUS_FOR_DELIVERY[preferences.get(user.pk, Delivery.IMMEDIATE)]
        if not user.email:
            status = EmailStatus.NOT_EMAILED
        rows.append(
            Notification(
                recipient=user,
                kind=kind,
                case=case,
                title=title[:200],
                body=body,
                created_at=now,
                email_status=status,
                next_attempt_at=now,
                digest_day=digest_day,
            )
        )
    created = Notification.objects.bulk_create(rows)
    pending = [row.pk for row in created if row.email_status == EmailStatus.PENDING]
    if pending:
        transaction.on_commit(lambda: enqueue_delivery(pending))
    return created


def step_performers(case):
    """The people whose job the case's active step is."""
    step = case.current_step
    if step is None:
        return []
    if step.lane in OWNER_LANES:
        cam = case.partner.cam
        return [cam] if cam is not None and cam.is_active else []
    users = users_with_permission(LANE_PERMISSION[step.lane])
    if step.number == 9:
        users = users.exclude(pk__in=case.payments.values("recorded_by"))
    return list(users)


def _label(case):
    step = case.current_step
    return f"Step {step.number} · {step.title} — {case.partner}"


def step_activated(*, case, actor):
    """The active step is now somebody's job: tell them (not the person who just acted)."""
    step = case.current_step
    kind = NotificationKind.PAYOUT_TO_VERIFY if step.number == 9 else NotificationKind.STEP_ASSIGNED
    send(
        [user for user in step_performers(case) if user.pk != actor.pk],
        kind=kind,
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
