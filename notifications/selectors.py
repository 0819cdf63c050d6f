"""Reads the notification pages need."""

from dataclasses import dataclass

from django.urls import reverse
from django.utils import timezone

from .models import EmailStatus, Notification, NotificationKind

INBOX_COLUMNS = ("pk", "kind", "case_id", "title", "body", "created_at", "read_at", "email_status")


@dataclass(frozen=True, slots=True)
class InboxRow:
    pk: int
    title: str
    body: str
    when: str  # created_at in the organisation's time zone, "YYYY-MM-DD HH:MM"
    kind_label: str
    email_label: str  # "email sent", "email in digest", ...
    unread: bool
    has_case: bool
    read_url: str  # POST here to mark it read (with open=1: and go to its case)


# The inbox pages through the latest notifications only: counting a manager's years of
# escalations (45,000 in the benchmark) on every visit cost more than the page itself.
INBOX_LIMIT = 1000


def inbox_ids(user):
    """The user's latest INBOX_LIMIT notifications, newest first, as ids to page through."""
    return user.notifications.order_by("-created_at", "-pk").values_list("pk", flat=True)[
        :INBOX_LIMIT
    ]


def inbox_rows(notification_ids) -> list[InboxRow]:
    """The inbox rows of `notification_ids` (a page of them), in that order: one query."""
    kinds = {value: str(label) for value, label in NotificationKind.choices}
    statuses = {value: str(label).lower() for value, label in EmailStatus.choices}
    values = {
        row[0]: row
        for row in Notification.objects.filter(pk__in=notification_ids).values_list(*INBOX_COLUMNS)
    }
    rows = []
    for notification_id in notification_ids:
        pk, kind, case_id, title, body, created_at, read_at, email_status = values[notification_id]
        rows.append(
            InboxRow(
                pk=pk,
                title=title,
                body=body,
                when=timezone.localtime(created_at).strftime("%Y-%m-%d %H:%M"),
                kind_label=kinds.get(kind, kind),
                email_label=statuses.get(email_status, email_status),
                unread=read_at is None,
                has_case=case_id is not None,
                read_url=reverse("notification_read", args=[pk]),
            )
        )
    return rows
