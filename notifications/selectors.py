"""Reads the notification pages need."""

from dataclasses import dataclass

from django.core.cache import cache
from django.core.paginator import Paginator
from django.utils.functional import cached_property

from core.display import local_minute

from .models import EmailStatus, NotificationKind

INBOX_COLUMNS = ("pk", "kind", "case_id", "title", "body", "created_at", "read_at", "email_status")
INBOX_PAGE_SIZE = 25
# How long a user's notification count is kept. notifications.services.send, which writes
# every notification the app sends, drops it sooner; a row written another way (the admin,
# a data load) shows in the count at the latest this long after.
INBOX_COUNT_SECONDS = 60


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


def inbox_count_key(user_id) -> str:
    return f"notifications:inbox-count:{user_id}"


class InboxPaginator(Paginator):
    """Django's paginator, with the number of the user's notifications kept in the cache.

    The page itself is read from notification_inbox_idx whatever the inbox's length, but
    counting a manager's years of escalations reads every one of them, on every visit: the
    page would cost more the more notifications there are (docs/inbox-count.md)."""

    def __init__(self, object_list, per_page, *, user_id):
        super().__init__(object_list, per_page)
        self.user_id = user_id

    @cached_property
    def count(self):
        return cache.get_or_set(
            inbox_count_key(self.user_id), self.object_list.count, INBOX_COUNT_SECONDS
        )


def inbox_page(user, number):
    """Page `number` (from ?page=; a bad one shows page 1 or the last, as get_page does) of
    the user's notifications, newest first, as rows of INBOX_COLUMNS."""
    notifications = user.notifications.order_by("-created_at", "-pk").values_list(*INBOX_COLUMNS)
    return InboxPaginator(notifications, INBOX_PAGE_SIZE, user_id=user.pk).get_page(number)


def inbox_rows(page) -> list[InboxRow]:
    """The InboxRow of each notification on `page` (inbox_page), in its order: one query."""
    kinds = {value: str(label) for value, label in NotificationKind.choices}
    statuses = {value: str(label).lower() for value, label in EmailStatus.choices}
    return [
        InboxRow(
            pk=pk,
            title=title,
            body=body,
            when=local_minute(created_at),
            kind_label=kinds.get(kind, kind),
            email_label=statuses.get(email_status, email_status),
            unread=read_at is None,
            has_case=case_id is not None,
        )
        for pk, kind, case_id, title, body, created_at, read_at, email_status in page
    ]
