"""Who hears about what. Called inside the transaction of the event being reported, so a
notification exists exactly when its event does (a transactional outbox)."""

import logging

from celery import current_app
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from . import broker
from .models import Delivery, EmailStatus, Notification, NotificationPreference
from .selectors import inbox_count_key

logger = logging.getLogger(__name__)

# The worker's task, looked up by name when a row is handed over, so this module (which the
# tasks call) does not import the tasks module back.
DELIVER_EMAIL_TASK = "notifications.tasks.deliver_email"

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
    deliver_email = current_app.tasks[DELIVER_EMAIL_TASK]
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
    # The recipients' inboxes count one more. Dropped now for this transaction's own reads,
    # and again once it commits, in case a page cached the old count in between.
    counts = [inbox_count_key(pk) for pk in unique]
    cache.delete_many(counts)
    transaction.on_commit(lambda: cache.delete_many(counts))
    pending = [row.pk for row in created if row.email_status == EmailStatus.PENDING]
    if pending:
        transaction.on_commit(lambda: enqueue_delivery(pending))
    return created
