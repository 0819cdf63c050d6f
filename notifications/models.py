import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class NotificationKind(models.TextChoices):
    STEP_ASSIGNED = "step_assigned", "A step became yours"
    REMINDER = "reminder", "Reminder: a step of yours falls due soon"
    ESCALATION = "escalation", "Escalation: a step is overdue"
    CASE_OPENED = "case_opened", "Case opened"
    CASE_WITHDRAWN = "case_withdrawn", "Case withdrawn"
    CASE_CLOSED = "case_closed", "Case closed"
    PAYOUT_TO_VERIFY = "payout_to_verify", "Payouts ready to verify"
    PAYMENT_EXCEPTION = "payment_exception", "Payment to an offboarded partner"
    RECORD_CORRECTED = "record_corrected", "Partner record corrected"
    OVERRIDE_TO_APPROVE = "override_to_approve", "Payment-guard override to approve"
    OVERRIDE_DECIDED = "override_decided", "Payment-guard override approved or refused"
    DAILY_DIGEST = "daily_digest", "Daily digest"
    # Sent by the web process (health/alarm.py), since the worker is what is missing.
    WORKER_ALARM = "worker_alarm", "Background worker stopped or came back"


class Delivery(models.TextChoices):
    IMMEDIATE = "immediate", "Email at once"
    DIGEST = "digest", "Daily digest only"
    IN_APP = "in_app", "In-app only"


class EmailStatus(models.TextChoices):
    PENDING = "pending", "Waiting to be sent"
    SENDING = "sending", "Being sent"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    IN_DIGEST = "in_digest", "Goes out in the daily digest"
    DIGESTED = "digested", "Sent in a daily digest"
    NOT_EMAILED = "not_emailed", "In-app only"


class Notification(models.Model):
    """A message to one person, written in the same transaction as the event it reports.

    The row is also the email outbox: a worker delivers it, a relay re-sends rows a crash or
    a broker outage left behind, and `delivery_key` makes every retry the same message.
    """

    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    kind = models.CharField(max_length=30, choices=NotificationKind.choices)
    case = models.ForeignKey(
        "offboarding.Case", on_delete=models.CASCADE, related_name="notifications", null=True
    )
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)

    email_status = models.CharField(
        max_length=12, choices=EmailStatus.choices, default=EmailStatus.PENDING
    )
    delivery_key = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    # When a pending row is relayed if no worker has sent it, or when a sending row's
    # lease runs out (a worker died holding it).
    next_attempt_at = models.DateTimeField(default=timezone.now)
    email_attempts = models.PositiveSmallIntegerField(default=0)
    email_error = models.TextField(blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)
    digest_day = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["recipient", "read_at", "-created_at"]),
            # The inbox: a person's notifications, newest first, a page at a time.
            models.Index(fields=["recipient", "-created_at", "-id"], name="notification_inbox_idx"),
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(email_status__in=["pending", "sending"]),
                name="notification_outbox_idx",
            ),
            models.Index(
                fields=["recipient", "created_at"],
                condition=Q(email_status="in_digest"),
                name="notification_digest_idx",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["recipient", "digest_day"],
                condition=Q(digest_day__isnull=False),
                name="one_digest_per_user_per_day",
            )
        ]

    def __str__(self):
        return self.title


class NotificationPreference(models.Model):
    """How one person wants one kind of notification. No row means email at once."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_preferences"
    )
    kind = models.CharField(max_length=30, choices=NotificationKind.choices)
    delivery = models.CharField(max_length=12, choices=Delivery.choices)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "kind"], name="one_preference_per_kind")
        ]

    def __str__(self):
        return f"{self.user} · {self.kind}: {self.delivery}"
