"""Celery tasks of the notification outbox. Each takes ids, never objects."""

import logging

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from . import broker, delivery, services

logger = logging.getLogger(__name__)


# The hard limit kills a pool process still sending after OUTBOX_SEND_TIME_LIMIT_SECONDS, and
# the lease (OUTBOX_LEASE_SECONDS) is longer: so a live worker never holds a row past its lease,
# and the relay that reclaims a row whose lease ran out never races a sender still at work.
# (Time limits need the prefork pool, Celery's default, which every topology here runs.)
@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    time_limit=settings.OUTBOX_SEND_TIME_LIMIT_SECONDS,
    soft_time_limit=max(settings.OUTBOX_SEND_TIME_LIMIT_SECONDS - 5, 1),
)
def deliver_email(notification_id):
    try:
        notification_id = int(notification_id)
    except (TypeError, ValueError):
        logger.error("deliver_email needs a notification id, got %r", notification_id)
        return "invalid"
    outcome = delivery.deliver(notification_id)
    if outcome.retry_in is not None and not broker.publish(
        deliver_email, (notification_id,), countdown=outcome.retry_in
    ):
        # Broker down: the row is pending with its due time, and the relay picks it up then.
        logger.warning("Could not schedule retry of %s; the relay will.", notification_id)
    return outcome.status


@shared_task(acks_late=True)
def relay_outbox():
    now = timezone.now()
    stranded = delivery.relay(now)
    if stranded:
        delivery.mark_relayed(stranded, now)
        # The relay is how rows get out once the broker is back: it tries even if this
        # process's breaker is open (the first publish probes; a success closes the breaker).
        services.enqueue_delivery(stranded, probe=True)
    return len(stranded)
