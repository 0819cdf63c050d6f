"""Reads the notification pages need."""

from dataclasses import dataclass

from core.display import local_minute, pk_url
from core.pagination import beyond_any_table

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


INBOX_PAGE_SIZE = 25


@dataclass(frozen=True, slots=True)
class InboxPage:
    """A page of the inbox, known to have a next one or not. The inbox is not counted: a
    manager's years of escalations (45,000 in the benchmark) cost more to count on every
    visit than to show, and "Next" reaches every one of them."""

    object_list: list  # notification ids, newest first
    number: int
    has_next: bool

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def next_page_number(self) -> int:
        return self.number + 1

    @property
    def previous_page_number(self) -> int:
        return self.number - 1


def inbox_page(user, number) -> InboxPage:
    """Page `number` (from ?page=; anything else reads as 1) of the user's notifications,
    newest first: one query, for one row more than a page."""
    try:
        number = max(int(number), 1)
    except (TypeError, ValueError):
        number = 1
    start = (number - 1) * INBOX_PAGE_SIZE
    if beyond_any_table(start, INBOX_PAGE_SIZE + 1):
        return InboxPage([], number, False)
    ids = list(
        user.notifications.order_by("-created_at", "-pk").values_list("pk", flat=True)[
            start : start + INBOX_PAGE_SIZE + 1
        ]
    )
    return InboxPage(ids[:INBOX_PAGE_SIZE], number, len(ids) > INBOX_PAGE_SIZE)


def inbox_rows(notification_ids) -> list[InboxRow]:
    """The inbox rows of `notification_ids` (a page of them), in that order: one query."""
    kinds = {value: str(label) for value, label in NotificationKind.choices}
    statuses = {value: str(label).lower() for value, label in EmailStatus.choices}
    values = {
        row[0]: row
        for row in Notification.objects.filter(pk__in=notification_ids).values_list(*INBOX_COLUMNS)
    }
    read_url = pk_url("notification_read")
    rows = []
    for notification_id in notification_ids:
        pk, kind, case_id, title, body, created_at, read_at, email_status = values[notification_id]
        rows.append(
            InboxRow(
                pk=pk,
                title=title,
                body=body,
                when=local_minute(created_at),
                kind_label=kinds.get(kind, kind),
                email_label=statuses.get(email_status, email_status),
                unread=read_at is None,
                has_case=case_id is not None,
                read_url=read_url(pk),
            )
        )
    return rows
