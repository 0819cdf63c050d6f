"""The notification outbox delivered without Celery, against a real SMTP server on 127.0.0.1,
and the notification pages (inbox, unread count, mark read, preferences)."""

import datetime as dt
import email
import html
import re
import socket
import threading
from email.header import decode_header, make_header
from email.message import Message
from types import SimpleNamespace

import pytest
import time_machine
from aiosmtpd.controller import Controller
from django.urls import reverse
from django.utils import timezone

from notifications import delivery, tasks
from notifications import selectors as notification_selectors
from notifications import services as notify
from notifications.models import (
    Delivery,
    EmailStatus,
    Notification,
    NotificationKind,
    NotificationPreference,
)
from tests.factories import CaseFactory, UserFactory

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 4, 14, 16, 0, tzinfo=dt.UTC)
SITE = "https://partnerops.example.test"


class Sink:
    """An SMTP server's DATA handler answering with `replies` in turn, then 250."""

    def __init__(self, replies=(), rcpt_reply=None):
        self.replies = list(replies)
        self.rcpt_reply = rcpt_reply
        self.attempts: list[Message] = []
        self.accepted: list[Message] = []
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.original_content or envelope.content)
        with self.lock:
            self.attempts.append(message)
            reply = self.replies.pop(0) if self.replies else "250 OK"
            if reply.startswith("250"):
                self.accepted.append(message)
        return reply


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp_sink(settings):
    """Start a sink with the given replies; Django's SMTP backend is pointed at it."""
    controllers = []

    def start(replies=(), rcpt_reply=None) -> Sink:
        sink = Sink(replies, rcpt_reply)
        port = _free_port()
        controller = Controller(sink, hostname="127.0.0.1", port=port)
        controller.start()
        controllers.append(controller)
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST = "127.0.0.1"
        settings.EMAIL_PORT = port
        settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
        settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
        settings.EMAIL_TIMEOUT = 5
        return sink

    yield start
    for controller in controllers:
        controller.stop()


@pytest.fixture(autouse=True)
def _outbox_settings(settings):
    settings.SITE_URL = SITE
    settings.EMAIL_MAX_ATTEMPTS = 6
    settings.EMAIL_RETRY_BASE_SECONDS = 30
    settings.EMAIL_RETRY_MAX_SECONDS = 3600
    settings.OUTBOX_RELAY_AFTER_SECONDS = 120
    settings.OUTBOX_LEASE_SECONDS = 300


@pytest.fixture
def frozen():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def case(roles):
    return CaseFactory(state="step_4", actors=roles)


def outbox_row(user, case=None, *, kind=NotificationKind.STEP_ASSIGNED, title="Step 5 is yours"):
    """One notification written by the services, still in the outbox (never committed here,
    so no worker was handed it)."""
    (row,) = notify.send([user], kind=kind, case=case, title=title, body="Please act.")
    return row


def text_and_html(message: Message) -> tuple[str, str]:
    parts = {
        part.get_content_type(): part.get_payload(decode=True).decode()
        for part in message.walk()
        if not part.is_multipart()
    }
    return parts["text/plain"], parts["text/html"]


# --- retries ----------------------------------------------------------------------------------


def test_task_retries_transient_refusals_and_the_message_is_accepted_once(
    frozen, roles, case, smtp_sink, monkeypatch
):
    sink = smtp_sink(["451 try later", "451 try later"])
    row = outbox_row(roles["salesops"], case)
    assert row.email_status == EmailStatus.PENDING

    # The broker: the task's retries are recorded here and run by hand, as a worker would.
    task = tasks.deliver_email
    scheduled = []
    monkeypatch.setattr(
        tasks,
        "deliver_email",
        SimpleNamespace(apply_async=lambda args, **kw: scheduled.append((args, kw))),
    )

    outcomes = [task(row.pk)]
    row.refresh_from_db()
    assert row.email_status == EmailStatus.PENDING
    assert row.email_attempts == 1
    assert "451" in row.email_error and "try later" in row.email_error
    assert row.next_attempt_at == NOW + dt.timedelta(seconds=30)

    countdowns = []
    while scheduled and len(outcomes) < 10:
        args, options = scheduled.pop(0)
        countdowns.append(options.get("countdown"))
        frozen.shift(options.get("countdown") or 0)
        outcomes.append(task(*args))

    assert outcomes == ["retry", "retry", "sent"]
    assert countdowns == [30, 60]  # exponential back-off from EMAIL_RETRY_BASE_SECONDS
    assert len(sink.attempts) == 3
    assert len(sink.accepted) == 1
    expected_id = f"<{row.delivery_key}@partnerops>"
    assert sink.accepted[0]["Message-ID"] == expected_id
    # Every attempt was the same message, so a receiver can de-duplicate.
    assert {m["Message-ID"] for m in sink.attempts} == {expected_id}
    assert sink.accepted[0]["To"] == roles["salesops"].email
    row.refresh_from_db()
    assert row.email_status == EmailStatus.SENT
    assert row.email_attempts == 3
    assert row.email_error == ""
    assert row.emailed_at is not None

    # A redelivered task message finds nothing to do.
    assert task(row.pk) == "not_claimed"
    assert len(sink.attempts) == 3
    assert scheduled == []


def test_deliver_three_times_after_two_transient_refusals(frozen, roles, case, smtp_sink):
    sink = smtp_sink(["451 try later", "451 try later"])
    row = outbox_row(roles["salesops"], case)

    outcomes = [delivery.deliver(row.pk) for _ in range(3)]
    assert [o.status for o in outcomes] == ["retry", "retry", "sent"]
    assert [o.retry_in for o in outcomes] == [30, 60, None]
    assert delivery.deliver(row.pk).status == "not_claimed"

    assert len(sink.accepted) == 1
    assert sink.accepted[0]["Message-ID"] == f"<{row.delivery_key}@partnerops>"
    row.refresh_from_db()
    assert (row.email_status, row.email_attempts) == (EmailStatus.SENT, 3)


@pytest.mark.parametrize(
    ("data_replies", "rcpt_reply"),
    [
        pytest.param(["550 no such user"], None, id="refused-at-data"),
        pytest.param([], "550 no such user", id="refused-at-rcpt"),
    ],
)
def test_permanent_refusal_fails_the_row_without_retry(
    frozen, roles, case, smtp_sink, monkeypatch, data_replies, rcpt_reply
):
    sink = smtp_sink(data_replies, rcpt_reply)
    row = outbox_row(roles["salesops"], case)
    task = tasks.deliver_email
    scheduled = []
    monkeypatch.setattr(
        tasks,
        "deliver_email",
        SimpleNamespace(apply_async=lambda args, **kw: scheduled.append((args, kw))),
    )

    assert task(row.pk) == "failed"
    assert scheduled == []  # no retry
    assert sink.accepted == []
    row.refresh_from_db()
    assert row.email_status == EmailStatus.FAILED
    assert row.email_attempts == 1
    assert "550" in row.email_error and "no such user" in row.email_error
    # A failed row is final: not claimed again, not relayed.
    assert delivery.deliver(row.pk).status == "not_claimed"
    assert row.pk not in delivery.relay(NOW + dt.timedelta(days=1))


def test_transient_refusals_give_up_after_the_last_attempt(roles, case, smtp_sink, settings):
    settings.EMAIL_MAX_ATTEMPTS = 3
    sink = smtp_sink(["451 try later"] * 5)
    row = outbox_row(roles["salesops"], case)
    statuses = [delivery.deliver(row.pk).status for _ in range(4)]
    assert statuses == ["retry", "retry", "failed", "not_claimed"]
    assert len(sink.attempts) == 3 and sink.accepted == []
    row.refresh_from_db()
    assert (row.email_status, row.email_attempts) == (EmailStatus.FAILED, 3)


# --- claims and leases --------------------------------------------------------------------------


def test_a_sent_row_is_not_claimed_and_nothing_is_sent(roles, case, smtp_sink):
    sink = smtp_sink()
    row = outbox_row(roles["salesops"], case)
    assert delivery.deliver(row.pk).status == "sent"
    assert delivery.deliver(row.pk).status == "not_claimed"
    assert len(sink.attempts) == 1
    row.refresh_from_db()
    assert row.email_attempts == 1


def test_a_row_leased_by_a_live_worker_is_not_claimed(frozen, roles, case, smtp_sink):
    sink = smtp_sink()
    row = outbox_row(roles["salesops"], case)
    lease_end = NOW + dt.timedelta(seconds=200)
    Notification.objects.filter(pk=row.pk).update(
        email_status=EmailStatus.SENDING, next_attempt_at=lease_end, email_attempts=1
    )
    assert delivery.deliver(row.pk).status == "not_claimed"
    assert sink.attempts == []
    row.refresh_from_db()
    assert (row.email_status, row.next_attempt_at, row.email_attempts) == (
        EmailStatus.SENDING,
        lease_end,
        1,
    )


def test_a_row_whose_lease_expired_is_claimed_and_sent(frozen, roles, case, smtp_sink):
    sink = smtp_sink()
    row = outbox_row(roles["salesops"], case)
    # A worker claimed it ten minutes ago and died: its lease ran out five minutes ago.
    Notification.objects.filter(pk=row.pk).update(
        email_status=EmailStatus.SENDING,
        next_attempt_at=NOW - dt.timedelta(minutes=5),
        email_attempts=1,
    )
    assert delivery.deliver(row.pk).status == "sent"
    assert len(sink.accepted) == 1
    row.refresh_from_db()
    assert (row.email_status, row.email_attempts) == (EmailStatus.SENT, 2)


def test_claim_takes_a_lease(frozen, roles, case, settings):
    row = outbox_row(roles["salesops"], case)
    assert delivery.claim(row.pk, NOW) is True
    assert delivery.claim(row.pk, NOW) is False  # held
    row.refresh_from_db()
    assert row.email_status == EmailStatus.SENDING
    assert row.next_attempt_at == NOW + dt.timedelta(seconds=settings.OUTBOX_LEASE_SECONDS)
    later = row.next_attempt_at
    assert delivery.claim(row.pk, later - dt.timedelta(seconds=1)) is False
    assert delivery.claim(row.pk, later) is True  # expired


def test_relay_lists_stranded_rows_only(frozen, roles, case):
    user = roles["salesops"]

    def row(status, next_attempt_at):
        made = outbox_row(user, case)
        Notification.objects.filter(pk=made.pk).update(
            email_status=status, next_attempt_at=next_attempt_at
        )
        return made.pk

    ago = lambda seconds: NOW - dt.timedelta(seconds=seconds)  # noqa: E731
    dead_worker = row(EmailStatus.SENDING, ago(600))  # lease expired ten minutes ago
    lost_message = row(EmailStatus.PENDING, ago(300))  # nobody picked it up
    just_relayable = row(EmailStatus.PENDING, ago(120))
    fresh = row(EmailStatus.PENDING, ago(0))
    almost = row(EmailStatus.PENDING, ago(119))
    retry_later = row(EmailStatus.PENDING, NOW + dt.timedelta(seconds=60))
    leased = row(EmailStatus.SENDING, NOW + dt.timedelta(seconds=200))
    finals = [
        row(status, ago(3600))
        for status in (
            EmailStatus.SENT,
            EmailStatus.FAILED,
            EmailStatus.IN_DIGEST,
            EmailStatus.DIGESTED,
            EmailStatus.NOT_EMAILED,
        )
    ]

    relayed = delivery.relay()
    assert relayed[:3] == [dead_worker, lost_message, just_relayable]
    for pk in [fresh, almost, retry_later, leased, *finals]:
        assert pk not in relayed
    # The case's own notifications (written "now" by CaseFactory) are fresh too.
    assert relayed == [dead_worker, lost_message, just_relayable]
    assert delivery.relay(limit=1) == [dead_worker]


# --- preferences decide what is emailed --------------------------------------------------------


@pytest.mark.parametrize(
    ("preference", "status"),
    [
        (None, EmailStatus.PENDING),
        (Delivery.IMMEDIATE, EmailStatus.PENDING),
        (Delivery.IN_APP, EmailStatus.NOT_EMAILED),
        (Delivery.DIGEST, EmailStatus.IN_DIGEST),
    ],
)
def test_preference_decides_the_email_status(roles, case, smtp_sink, preference, status):
    sink = smtp_sink()
    user = roles["salesops"]
    if preference:
        NotificationPreference.objects.create(
            user=user, kind=NotificationKind.STEP_ASSIGNED, delivery=preference
        )
    row = outbox_row(user, case)
    assert row.email_status == status
    # The preference of one kind does not touch another.
    other = outbox_row(user, case, kind=NotificationKind.REMINDER)
    assert other.email_status == EmailStatus.PENDING

    outcome = delivery.deliver(row.pk)
    if status == EmailStatus.PENDING:
        assert outcome.status == "sent"
        assert len(sink.accepted) == 1
    else:
        assert outcome.status == "not_claimed"
        assert sink.attempts == []
        row.refresh_from_db()
        assert row.email_status == status


def test_a_user_without_an_email_address_is_not_emailed(case):
    user = UserFactory(username="noemail", email="")
    assert outbox_row(user, case).email_status == EmailStatus.NOT_EMAILED


def test_email_bodies_link_to_the_case(roles, case, smtp_sink):
    sink = smtp_sink()
    row = outbox_row(roles["salesops"], case, title="Step 5 · Update the partner record")
    assert delivery.deliver(row.pk).status == "sent"
    (message,) = sink.accepted
    text, html = text_and_html(message)
    link = f"{SITE}/cases/{case.pk}/"
    assert link in text
    assert f'href="{link}"' in html
    assert "Step 5 · Update the partner record" in text
    subject = str(make_header(decode_header(message["Subject"])))
    assert subject == "[PartnerOps] Step 5 · Update the partner record"


def test_email_without_a_case_links_to_the_inbox(roles, smtp_sink):
    sink = smtp_sink()
    row = outbox_row(roles["salesops"], None, kind=NotificationKind.DAILY_DIGEST, title="Digest")
    assert delivery.deliver(row.pk).status == "sent"
    text, html = text_and_html(sink.accepted[0])
    assert f"{SITE}/inbox/" in text
    assert f'href="{SITE}/inbox/"' in html
    assert "/cases/" not in text + html


# --- the notification pages ----------------------------------------------------------------------

UNREAD_BADGE = re.compile(r'id="unread-count">(\d+)<')


def unread_badge(response):
    found = UNREAD_BADGE.search(response.content.decode())
    return int(found.group(1)) if found else None


@pytest.fixture
def inbox_rows(roles, case):
    ops, cam = roles["salesops"], roles["cam"]
    rows = [outbox_row(ops, case, title=f"Ops notification {n}") for n in range(3)]
    others = outbox_row(cam, case, title="The CAM's own notification")
    return rows, others


def test_inbox_lists_only_my_notifications_and_the_navbar_counts_unread(client, roles, inbox_rows):
    rows, others = inbox_rows
    client.force_login(roles["salesops"])
    response = client.get(reverse("inbox"))
    assert response.status_code == 200
    content = response.content.decode()
    for row in rows:
        assert row.title in content
    assert others.title not in content
    assert (
        unread_badge(response)
        == Notification.objects.filter(recipient=roles["salesops"], read_at__isnull=True).count()
    )
    assert unread_badge(response) >= 3
    # The count is in the navbar of every page.
    assert unread_badge(client.get(reverse("my_work"))) == unread_badge(response)


def test_inbox_items_escape_their_text_and_post_with_the_csrf_token(roles):
    from django.test import Client

    ops = roles["salesops"]
    unread = Notification.objects.create(
        recipient=ops,
        kind=NotificationKind.STEP_ASSIGNED,
        title='<b>Tom & "Jerry"</b>',
        body="line 1\n<script>x</script>",
    )
    read = Notification.objects.create(
        recipient=ops,
        kind=NotificationKind.STEP_ASSIGNED,
        title="Done <i>",
        read_at=timezone.now(),
    )
    client = Client(enforce_csrf_checks=True)
    client.force_login(ops)

    content = client.get(reverse("inbox")).content.decode()

    assert "<b>Tom" not in content and "<script>x" not in content and "Done <i>" not in content
    assert (
        '<div class="fw-semibold">&lt;b&gt;Tom &amp; &quot;Jerry&quot;&lt;/b&gt;</div>' in content
    )
    assert "line 1\n&lt;script&gt;x&lt;/script&gt;</div>" in content
    assert '<div class="fw-semibold">Done &lt;i&gt;</div>' in content
    # An unread item has a form to mark it read; its CSRF token is accepted.
    form = re.search(
        r'action="(/inbox/(\d+)/read/)">'
        r'<input type="hidden" name="csrfmiddlewaretoken" value="([^"]+)">',
        content,
    )
    assert form and int(form.group(2)) == unread.pk, content
    assert f"/inbox/{read.pk}/read/" not in content  # read, and without a case: no form
    response = client.post(form.group(1), {"csrfmiddlewaretoken": form.group(3)})
    assert response.status_code == 302
    unread.refresh_from_db()
    assert unread.read_at is not None


def test_inbox_pages_reach_every_notification_newest_first(client, roles, case, monkeypatch):
    monkeypatch.setattr(notification_selectors, "INBOX_PAGE_SIZE", 2)
    Notification.objects.filter(recipient=roles["salesops"]).delete()
    rows = [outbox_row(roles["salesops"], case, title=f"Numbered {n}") for n in range(5)]
    for age, row in enumerate(rows):
        Notification.objects.filter(pk=row.pk).update(
            created_at=timezone.now() - dt.timedelta(days=400 * age)
        )
    client.force_login(roles["salesops"])

    seen, pages = [], {}
    for number in (1, 2, 3, 4):
        content = client.get(reverse("inbox"), {"page": number}).content.decode()
        pages[number] = content
        seen.append([n for n in range(5) if f"Numbered {n}<" in content])

    assert seen == [[0, 1], [2, 3], [4], [4]]  # newest first; past the last page: the last
    assert 'href="?page=2">Older' in pages[1] and "Newer" not in pages[1]
    assert 'href="?page=2">Newer' in pages[3] and "Older" not in pages[3]
    assert "Page 3 of 3" in pages[3]
    # Not a number: the first page; below the first: the last, as Django's get_page shows.
    for bad, newest_shown in (("x", 0), ("-3", 4), ("0", 4)):
        content = client.get(reverse("inbox"), {"page": bad}).content.decode()
        assert f"Numbered {newest_shown}<" in content


def _inbox_titles(response):
    """The titles of the notifications the inbox lists, top to bottom."""
    listed = response.content.decode().split('<ul class="list-group">', 1)[1].split("</ul>")[0]
    items = re.findall(r"<li\b[^>]*>\s*<div>\s*<div[^>]*>(.*?)</div>", listed, re.S)
    return [html.unescape(item).strip() for item in items]


def test_a_new_notification_shows_at_once_although_the_count_is_cached(client, roles, case):
    """The inbox keeps its count in the cache; send() drops it, so the next page counts anew."""
    ops = roles["salesops"]
    Notification.objects.filter(recipient=ops).delete()
    client.force_login(ops)
    assert "Nothing here." in client.get(reverse("inbox")).content.decode()

    outbox_row(ops, case, title="Just sent")

    response = client.get(reverse("inbox"))
    assert _inbox_titles(response) == ["Just sent"]


def test_mark_read_is_post_only_and_only_for_my_own(client, roles, case, inbox_rows):
    rows, others = inbox_rows
    client.force_login(roles["salesops"])
    before = unread_badge(client.get(reverse("inbox")))

    url = reverse("notification_read", args=[rows[0].pk])
    assert client.get(url).status_code == 405
    rows[0].refresh_from_db()
    assert rows[0].read_at is None

    response = client.post(url)
    assert response.status_code == 302 and response.url == reverse("inbox")
    rows[0].refresh_from_db()
    assert rows[0].read_at is not None
    assert unread_badge(client.get(reverse("inbox"))) == before - 1

    # Open the case: read and redirected to it.
    response = client.post(reverse("notification_read", args=[rows[1].pk]), {"open": "1"})
    assert response.status_code == 302
    assert response.url == reverse("case_detail", args=[case.pk])
    rows[1].refresh_from_db()
    assert rows[1].read_at is not None

    # Somebody else's notification: not found, untouched.
    response = client.post(reverse("notification_read", args=[others.pk]))
    assert response.status_code == 404
    others.refresh_from_db()
    assert others.read_at is None


def test_mark_all_read_is_post_only_and_only_mine(client, roles, inbox_rows):
    rows, others = inbox_rows
    client.force_login(roles["salesops"])
    url = reverse("notifications_read_all")

    assert client.get(url).status_code == 405
    assert Notification.objects.filter(recipient=roles["salesops"], read_at__isnull=True).exists()

    response = client.post(url)
    assert response.status_code == 302
    assert not Notification.objects.filter(
        recipient=roles["salesops"], read_at__isnull=True
    ).exists()
    others.refresh_from_db()
    assert others.read_at is None
    assert unread_badge(client.get(reverse("inbox"))) is None


def radio_buttons(response) -> dict[str, dict[str, bool]]:
    """{field name: {value: checked}} of every radio button on the page."""
    found: dict[str, dict[str, bool]] = {}
    for tag in re.findall(r"<input[^>]*>", response.content.decode()):
        if 'type="radio"' not in tag:
            continue
        name = re.search(r'name="([^"]+)"', tag).group(1)
        value = re.search(r'value="([^"]+)"', tag).group(1)
        found.setdefault(name, {})[value] = bool(re.search(r"\schecked\b", tag))
    return found


CHOOSABLE_KINDS = [k for k in NotificationKind.values if k != NotificationKind.DAILY_DIGEST]


def test_preferences_page_shows_a_radio_group_per_kind(client, roles):
    user = roles["salesops"]
    NotificationPreference.objects.create(
        user=user, kind=NotificationKind.REMINDER, delivery=Delivery.DIGEST
    )
    client.force_login(user)
    response = client.get(reverse("notification_preferences"))
    assert response.status_code == 200
    radios = radio_buttons(response)
    assert sorted(radios) == sorted(CHOOSABLE_KINDS)
    for kind, choices in radios.items():
        assert sorted(choices) == sorted(Delivery.values), kind
        expected = Delivery.DIGEST if kind == NotificationKind.REMINDER else Delivery.IMMEDIATE
        assert [value for value, checked in choices.items() if checked] == [expected], kind


def test_preferences_post_saves(client, roles):
    user = roles["salesops"]
    client.force_login(user)
    data = dict.fromkeys(CHOOSABLE_KINDS, Delivery.IMMEDIATE)
    data[NotificationKind.STEP_ASSIGNED] = Delivery.DIGEST
    data[NotificationKind.CASE_CLOSED] = Delivery.IN_APP
    response = client.post(reverse("notification_preferences"), data)
    assert response.status_code == 302
    saved = dict(user.notification_preferences.values_list("kind", "delivery"))
    assert saved == data
    radios = radio_buttons(client.get(reverse("notification_preferences")))
    assert radios[NotificationKind.STEP_ASSIGNED][Delivery.DIGEST] is True
    assert radios[NotificationKind.CASE_CLOSED][Delivery.IN_APP] is True

    # And it takes effect: the next step assignment goes to the digest.
    assert outbox_row(user).email_status == EmailStatus.IN_DIGEST


def test_preferences_post_with_an_invalid_choice_is_400_and_saves_nothing(client, roles):
    user = roles["salesops"]
    NotificationPreference.objects.create(
        user=user, kind=NotificationKind.REMINDER, delivery=Delivery.IN_APP
    )
    client.force_login(user)
    data = dict.fromkeys(CHOOSABLE_KINDS, Delivery.DIGEST)
    data[NotificationKind.ESCALATION] = "carrier_pigeon"
    response = client.post(reverse("notification_preferences"), data)
    assert response.status_code == 400
    content = response.content.decode()
    assert "Select a valid choice" in content
    assert "carrier_pigeon" in content
    assert dict(user.notification_preferences.values_list("kind", "delivery")) == {
        NotificationKind.REMINDER: Delivery.IN_APP
    }


def test_preferences_for_the_digest_itself_cannot_be_set(client, roles):
    user = roles["salesops"]
    client.force_login(user)
    data = dict.fromkeys(CHOOSABLE_KINDS, Delivery.IN_APP)
    data[NotificationKind.DAILY_DIGEST] = Delivery.IN_APP
    assert client.post(reverse("notification_preferences"), data).status_code == 302
    assert not user.notification_preferences.filter(kind=NotificationKind.DAILY_DIGEST).exists()


def test_notification_pages_need_a_login(client, roles, inbox_rows):
    rows, _ = inbox_rows
    for url in (
        reverse("inbox"),
        reverse("notification_preferences"),
    ):
        response = client.get(url)
        assert response.status_code == 302 and "/login/" in response.url
    response = client.post(reverse("notification_read", args=[rows[0].pk]))
    assert response.status_code == 302 and "/login/" in response.url
    rows[0].refresh_from_db()
    assert rows[0].read_at is None


def test_unread_count_is_per_user(client, roles, inbox_rows):
    client.force_login(roles["cam"])
    mine = Notification.objects.filter(recipient=roles["cam"], read_at__isnull=True).count()
    assert unread_badge(client.get(reverse("inbox"))) == mine
    Notification.objects.filter(recipient=roles["cam"]).update(read_at=timezone.now())
    assert unread_badge(client.get(reverse("inbox"))) is None
