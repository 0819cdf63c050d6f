"""Sending one outbox row by email, at most once per claim, with retries for transient errors.

A worker claims a row with a conditional update (pending, or sending with an expired lease)
before it talks to SMTP, so two workers, a redelivered task and the relay never send the same
row at once; the Message-ID is the row's delivery key, so a receiver sees every retry as the
same message.

How fast a dead worker's row comes back, and why it is safe (see also README, *Resilience*):
- a claim holds the row for OUTBOX_LEASE_SECONDS (45 s); the task sending it is killed by
  its hard time limit OUTBOX_SEND_TIME_LIMIT_SECONDS (30 s) before that, so only a worker that
  is gone can still "hold" a row whose lease ran out;
- the relay (every PARTNEROPS_RELAY_EVERY_SECONDS, 30 s) re-enqueues `sending` rows as soon
  as their lease has run out, and `pending` rows OUTBOX_RELAY_AFTER_SECONDS (45 s) past their
  due time (a dead worker may have reserved their messages from the broker without claiming
  them): a dead worker's row is sent again within 45 + 30 s, by whichever worker claims it
  first, with the same Message-ID;
- the broker's own redelivery of the dead worker's message (Redis: after the visibility
  timeout, hours later) then finds the row sent and does nothing. The claim, not the broker,
  decides who sends.
"""

import datetime as dt
import logging
import smtplib
from dataclasses import dataclass

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db.models import F, Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from .models import EmailStatus, Notification

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    status: str  # sent, not_claimed, retry, failed
    retry_in: int | None = None


def _backoff(attempts: int) -> int:
    return min(
        settings.EMAIL_RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0),
        settings.EMAIL_RETRY_MAX_SECONDS,
    )


def is_transient(error: Exception) -> bool:
    """4xx replies, dropped connections and network errors are worth retrying; 5xx are not."""
    if isinstance(error, SoftTimeLimitExceeded):
        # The send took too long (a stalled server): try again later, before the lease ends.
        return True
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return all(code < 500 for code, _ in error.recipients.values())
    if isinstance(error, smtplib.SMTPResponseException):
        return error.smtp_code < 500
    return isinstance(error, smtplib.SMTPException | OSError)


def claim(notification_id: int, now: dt.datetime) -> bool:
    lease_ends = now + dt.timedelta(seconds=settings.OUTBOX_LEASE_SECONDS)
    claimable = Q(email_status=EmailStatus.PENDING) | Q(
        email_status=EmailStatus.SENDING, next_attempt_at__lte=now
    )
    return bool(
        Notification.objects.filter(claimable, pk=notification_id).update(
            email_status=EmailStatus.SENDING,
            next_attempt_at=lease_ends,
            email_attempts=F("email_attempts") + 1,
        )
    )


def build_message(notification: Notification) -> EmailMultiAlternatives:
    case_url = (
        settings.SITE_URL + reverse("case_detail", args=[notification.case_id])
        if notification.case_id
        else settings.SITE_URL + reverse("inbox")
    )
    context = {
        "notification": notification,
        "case_url": case_url,
        "inbox_url": settings.SITE_URL + reverse("inbox"),
    }
    message = EmailMultiAlternatives(
        subject=f"[PartnerOps] {notification.title}",
        body=render_to_string("notifications/email/notification.txt", context),
        to=[notification.recipient.email],
        headers={"Message-ID": f"<{notification.delivery_key}@partnerops>"},
    )
    message.attach_alternative(
        render_to_string("notifications/email/notification.html", context), "text/html"
    )
    return message


def deliver(notification_id: int, *, connection=None) -> Outcome:
    """Claim the row, send it, record the outcome. `connection`: an open email backend to send
    through (the worker alarm passes one with a short timeout); else Django's default."""
    now = timezone.now()
    if not claim(notification_id, now):
        return Outcome("not_claimed")
    notification = Notification.objects.select_related("recipient", "case").get(pk=notification_id)
    try:
        message = build_message(notification)
        message.connection = connection
        message.send(fail_silently=False)
    except Exception as error:  # classified below; nothing escapes unrecorded
        attempts = notification.email_attempts
        if is_transient(error) and attempts < settings.EMAIL_MAX_ATTEMPTS:
            wait = _backoff(attempts)
            Notification.objects.filter(pk=notification_id).update(
                email_status=EmailStatus.PENDING,
                email_error=f"attempt {attempts}: {error!r}"[:2000],
                next_attempt_at=now + dt.timedelta(seconds=wait),
            )
            logger.warning("Email %s failed (%r); retrying in %ss", notification_id, error, wait)
            return Outcome("retry", retry_in=wait)
        Notification.objects.filter(pk=notification_id).update(
            email_status=EmailStatus.FAILED, email_error=f"attempt {attempts}: {error!r}"[:2000]
        )
        logger.error("Email %s failed for good: %r", notification_id, error)
        return Outcome("failed")
    Notification.objects.filter(pk=notification_id).update(
        email_status=EmailStatus.SENT, emailed_at=timezone.now(), email_error=""
    )
    return Outcome("sent")


def mark_relayed(notification_ids, now: dt.datetime) -> None:
    """A pending row handed to the broker again is due again from now, so the next relay waits
    its grace once more rather than queueing it on every beat while a long queue drains."""
    Notification.objects.filter(
        pk__in=list(notification_ids), email_status=EmailStatus.PENDING, next_attempt_at__lte=now
    ).update(next_attempt_at=now)


def relay(now: dt.datetime | None = None, limit: int = 500) -> list[int]:
    """Rows a lost message or a dead worker left behind: pending for OUTBOX_RELAY_AFTER_SECONDS
    past their due time (a live worker normally takes them within a second; the grace keeps
    the relay from doubling a busy queue), or sending with an expired lease (at once: the
    lease already outlasts any live sender)."""
    now = now or timezone.now()
    pending_due = now - dt.timedelta(seconds=settings.OUTBOX_RELAY_AFTER_SECONDS)
    return list(
        Notification.objects.filter(
            Q(email_status=EmailStatus.PENDING, next_attempt_at__lte=pending_due)
            | Q(email_status=EmailStatus.SENDING, next_attempt_at__lte=now)
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
