"""A delivery claimed by a worker that died comes back within about a minute, with the same
Message-ID, and a worker still sending is never raced (issue 15, item 2).

The clock is time_machine's; the worker's death is its claim with no outcome after it (what
a SIGKILL leaves: the row `sending`, its lease running). tests/test_delivery_resilience.py
kills a real worker with a short lease.
"""

import datetime as dt
import importlib.util
import os
from pathlib import Path
from unittest import mock

import pytest
import time_machine
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings as django_settings
from django.core import mail
from django.core.exceptions import ImproperlyConfigured
from django.core.mail.backends.base import BaseEmailBackend

from notifications import delivery, tasks
from notifications import services as notify
from notifications.apps import check_outbox_lease
from notifications.models import EmailStatus, Notification, NotificationKind
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 4, 14, 16, 0, tzinfo=dt.UTC)
BASE_DIR = Path(django_settings.BASE_DIR)


def _production_settings(**env) -> object:
    """base.py evaluated afresh with these environment variables (the defaults otherwise)."""
    spec = importlib.util.spec_from_file_location(
        "partnerops.settings._lease_probe", BASE_DIR / "partnerops" / "settings" / "base.py"
    )
    module = importlib.util.module_from_spec(spec)
    with mock.patch.dict(os.environ, env):
        ours = ("PARTNEROPS_OUTBOX_", "PARTNEROPS_RELAY_EVERY_", "PARTNEROPS_EMAIL_RETRY_")
        for name in [n for n in os.environ if n.startswith(ours)]:
            if name not in env:
                del os.environ[name]
        spec.loader.exec_module(module)
    return module


@pytest.fixture
def frozen():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def defaults(settings):
    """The shipped defaults, whatever the environment running the tests says."""
    shipped = _production_settings()
    settings.OUTBOX_LEASE_SECONDS = shipped.OUTBOX_LEASE_SECONDS
    settings.OUTBOX_RELAY_AFTER_SECONDS = shipped.OUTBOX_RELAY_AFTER_SECONDS
    settings.OUTBOX_SEND_TIME_LIMIT_SECONDS = shipped.OUTBOX_SEND_TIME_LIMIT_SECONDS
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    return shipped


def _row(username="ops") -> Notification:
    (row,) = notify.send(
        [UserFactory(username=username)], kind=NotificationKind.CASE_OPENED, title="Hello"
    )
    return row


def test_the_shipped_numbers_reclaim_a_dead_workers_row_within_ninety_seconds(defaults):
    lease = defaults.OUTBOX_LEASE_SECONDS
    relay_every = defaults.CELERY_BEAT_SCHEDULE["relay-outbox"]["schedule"]
    limit = defaults.OUTBOX_SEND_TIME_LIMIT_SECONDS
    relay_after = defaults.OUTBOX_RELAY_AFTER_SECONDS
    assert (lease, relay_after, relay_every, limit) == (45, 45, 30, 30)
    # Worst case: the lease (a row the dead worker had claimed) or the grace (a row whose
    # message it had reserved, unclaimed) runs out just after a relay; the next one takes it.
    assert lease + relay_every <= 90
    assert relay_after + relay_every <= 90
    # A live sender is stopped by its hard time limit before its lease runs out.
    assert limit < lease
    assert tasks.deliver_email.time_limit == django_settings.OUTBOX_SEND_TIME_LIMIT_SECONDS
    assert tasks.deliver_email.soft_time_limit < tasks.deliver_email.time_limit


def test_redis_visibility_timeout_outlasts_countdowns_leases_and_time_limits():
    """Redis hands an unacknowledged message to another worker after the visibility timeout.
    It must be longer than the longest retry countdown (a worker holds a countdown's message
    unacknowledged until it runs) and than any claim, so the broker never redelivers a task a
    live worker still holds; recovery from a dead worker comes from the relay, not from it."""
    shipped = _production_settings(REDIS_URL="redis://127.0.0.1:6379/0")
    visibility = shipped.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
    assert visibility > shipped.EMAIL_RETRY_MAX_SECONDS
    assert visibility > shipped.OUTBOX_LEASE_SECONDS > shipped.OUTBOX_SEND_TIME_LIMIT_SECONDS
    assert visibility > shipped.CELERY_TASK_TIME_LIMIT


def test_a_dead_workers_row_is_relayed_when_its_lease_ends_and_sent_with_the_same_message_id(
    defaults, frozen
):
    row = _row()
    lease = dt.timedelta(seconds=defaults.OUTBOX_LEASE_SECONDS)
    assert delivery.claim(row.pk, NOW)  # a worker took it ... and was SIGKILLed
    row.refresh_from_db()
    assert (row.email_status, row.next_attempt_at) == (EmailStatus.SENDING, NOW + lease)

    frozen.move_to(NOW + lease - dt.timedelta(seconds=1))
    assert row.pk not in delivery.relay()  # the worker might still be sending
    assert delivery.deliver(row.pk).status == "not_claimed"
    assert mail.outbox == []

    frozen.move_to(NOW + lease)
    assert delivery.relay() == [row.pk]  # no extra grace: the lease already outlasts a send
    assert tasks.relay_outbox() == 1  # eager in tests: the re-enqueued task runs here

    (message,) = mail.outbox
    assert message.extra_headers["Message-ID"] == f"<{row.delivery_key}@partnerops>"
    row.refresh_from_db()
    assert (row.email_status, row.email_attempts) == (EmailStatus.SENT, 2)
    assert tasks.relay_outbox() == 0
    # The broker's own redelivery of the dead worker's message, hours later, sends nothing.
    assert tasks.deliver_email(row.pk) == "not_claimed"
    assert len(mail.outbox) == 1


def test_a_live_worker_holding_its_lease_is_never_raced(defaults, frozen):
    row = _row()
    assert delivery.claim(row.pk, NOW)
    for seconds in (1, 10, 30, 44):
        frozen.move_to(NOW + dt.timedelta(seconds=seconds))
        assert row.pk not in delivery.relay()
        assert delivery.claim(row.pk, NOW + dt.timedelta(seconds=seconds)) is False
    # Two relays and two workers at the lease's end: one claim wins.
    frozen.move_to(NOW + dt.timedelta(seconds=45))
    wins = [delivery.claim(row.pk, NOW + dt.timedelta(seconds=45)) for _ in range(2)]
    assert wins == [True, False]


def test_a_pending_row_is_relayed_after_its_grace_and_then_not_on_every_beat(
    defaults, frozen, monkeypatch
):
    row = _row()
    grace = dt.timedelta(seconds=defaults.OUTBOX_RELAY_AFTER_SECONDS)
    frozen.move_to(NOW + grace - dt.timedelta(seconds=1))
    assert row.pk not in delivery.relay()
    frozen.move_to(NOW + grace)
    assert delivery.relay() == [row.pk]

    # Its message goes to a worker that never gets to it (a long queue, or it died holding
    # the message unclaimed): nothing runs here, as no worker does.
    enqueued = []
    monkeypatch.setattr(
        "notifications.services.enqueue_delivery", lambda ids, **kw: enqueued.append(list(ids))
    )
    assert tasks.relay_outbox() == 1
    assert enqueued == [[row.pk]]
    row.refresh_from_db()
    assert (row.email_status, row.next_attempt_at) == (EmailStatus.PENDING, NOW + grace)
    frozen.move_to(NOW + grace + dt.timedelta(seconds=30))  # the next beat: not again yet
    assert tasks.relay_outbox() == 0
    frozen.move_to(NOW + 2 * grace)  # a grace later, still not sent: once more
    assert tasks.relay_outbox() == 1
    assert enqueued == [[row.pk], [row.pk]]


class StallingBackend(BaseEmailBackend):
    """An SMTP conversation that outlives the task's soft time limit."""

    def send_messages(self, messages):
        raise SoftTimeLimitExceeded()


def test_a_send_cut_short_by_the_soft_time_limit_is_retried_not_failed(defaults, frozen, settings):
    settings.EMAIL_BACKEND = "tests.test_outbox_lease.StallingBackend"
    row = _row()
    outcome = delivery.deliver(row.pk)
    assert outcome.status == "retry"
    row.refresh_from_db()
    assert row.email_status == EmailStatus.PENDING
    assert row.next_attempt_at == NOW + dt.timedelta(seconds=outcome.retry_in)
    assert "SoftTimeLimitExceeded" in row.email_error


@pytest.mark.parametrize(("lease", "limit", "errors"), [(45, 30, 0), (30, 30, 1), (20, 30, 1)])
def test_check_refuses_a_lease_a_live_sender_could_outlast(settings, lease, limit, errors):
    settings.OUTBOX_LEASE_SECONDS = lease
    settings.OUTBOX_SEND_TIME_LIMIT_SECONDS = limit
    found = check_outbox_lease()
    assert len(found) == errors
    if errors:
        assert found[0].id == "notifications.E001"
        assert "PARTNEROPS_OUTBOX_LEASE_SECONDS" in found[0].msg


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("PARTNEROPS_BROKER_PUBLISH_TIMEOUT_SECONDS", "soon", "is not a number"),
        ("PARTNEROPS_BROKER_PUBLISH_TIMEOUT_SECONDS", "0", "more than 0 and at most 5"),
        ("PARTNEROPS_BROKER_PUBLISH_TIMEOUT_SECONDS", "30", "more than 0 and at most 5"),
        ("PARTNEROPS_BROKER_BREAKER_SECONDS", "-1", "0 or more"),
        ("PARTNEROPS_WORKER_ALARM_AFTER_SECONDS", "0", "1 or more"),
        ("PARTNEROPS_WORKER_ALARM_CHECK_EVERY_SECONDS", "0", "1 or more"),
        ("PARTNEROPS_WORKER_ALARM_EMAIL_TIMEOUT_SECONDS", "0", "1 or more"),
        ("PARTNEROPS_WORKER_ALARM", "perhaps", "PARTNEROPS_WORKER_ALARM"),
    ],
)
def test_resilience_settings_refuse_bad_values(variable, value, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        _production_settings(**{variable: value})


def test_resilience_settings_defaults():
    shipped = _production_settings()
    assert shipped.BROKER_PUBLISH_TIMEOUT_SECONDS == 0.3
    assert shipped.BROKER_BREAKER_SECONDS == 30
    assert shipped.WORKER_ALARM_ENABLED is True
    assert shipped.WORKER_ALARM_AFTER_SECONDS == 180
    assert shipped.MIDDLEWARE[-1] == "health.alarm.WorkerAlarmMiddleware"
