"""When the worker's heartbeat is missing for a few minutes, the partner-ops managers and the
superusers are told, in-app and by email, by the web process (health/alarm.py): once per
outage, and again when the worker is back.

"No worker" here is real: Celery is not eager and its broker is a closed port, so nothing the
alarm hands to the outbox can run; what arrives by email was sent by the web process itself.
"""

import datetime as dt
import logging
import socket

import pytest
import time_machine
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from kombu import pools

from health import alarm
from health.models import WorkerAlarm, WorkerHeartbeat
from health.tasks import heartbeat
from notifications import broker
from notifications.models import EmailStatus, Notification, NotificationKind
from partnerops.celery import app as celery_app
from tests.factories import UserFactory
from tests.race import race

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 4, 14, 16, 0, tzinfo=dt.UTC)
MINUTE = dt.timedelta(minutes=1)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens once the socket is closed


def _reset_pools():
    """Close every broker pool of this process and forget them, so the next publish (to the
    URL the test sets, or back to the suite's) gets a fresh pool rather than a closed one."""
    pools.reset()
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@pytest.fixture
def no_worker():
    """No task can run: not eager, and the broker is a closed port."""
    keys = ("broker_url", "task_always_eager")
    saved = {key: celery_app.conf[key] for key in keys}
    _reset_pools()
    broker.reset_breaker()
    celery_app.conf.broker_url = f"redis://127.0.0.1:{_closed_port()}/0"
    celery_app.conf.task_always_eager = False
    yield
    broker.reset_breaker()
    _reset_pools()
    for key, value in saved.items():
        celery_app.conf[key] = value


@pytest.fixture(autouse=True)
def alarm_settings(settings):
    settings.WORKER_ALARM_ENABLED = True
    settings.WORKER_ALARM_AFTER_SECONDS = 180
    settings.WORKER_ALARM_CHECK_EVERY_SECONDS = 60
    settings.WORKER_ALARM_EMAIL_TIMEOUT_SECONDS = 2
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    alarm.reset()
    yield
    alarm.reset()


@pytest.fixture
def people(roles):
    admin = UserFactory(username="root", is_superuser=True, is_staff=True)
    return {"manager": roles["manager"], "admin": admin, "cam": roles["cam"]}


@pytest.fixture
def frozen():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def _beat(at):
    WorkerHeartbeat.objects.update_or_create(name="worker", defaults={"beat_at": at})


def _alarm_rows(**filters):
    return Notification.objects.filter(kind=NotificationKind.WORKER_ALARM, **filters)


def _watching_since(at):
    """The web processes have been watching since `at` (their first look)."""
    alarm.check(at)


def test_a_missing_heartbeat_is_told_once_in_app_and_by_email_without_the_worker(
    people, no_worker, frozen
):
    _beat(NOW - 10 * MINUTE)

    assert alarm.check(NOW) == "raised"

    rows = list(_alarm_rows())
    assert {row.recipient for row in rows} == {people["manager"], people["admin"]}
    assert all("missing for 10 min" in row.title for row in rows)
    # Emailed from this process (the broker is a closed port: nothing was queued or run).
    assert sorted(message.to[0] for message in mail.outbox) == sorted(
        [people["manager"].email, people["admin"].email]
    )
    assert all(row.email_status == EmailStatus.SENT for row in _alarm_rows())
    assert {message.extra_headers["Message-ID"] for message in mail.outbox} == {
        f"<{row.delivery_key}@partnerops>" for row in rows
    }

    # The outage goes on: later looks say nothing more.
    for minutes in (0.5, 1, 2, 10, 60):
        frozen.move_to(NOW + minutes * MINUTE)
        assert alarm.check(NOW + minutes * MINUTE) is None
    assert _alarm_rows().count() == 2
    assert len(mail.outbox) == 2


def test_the_heartbeat_coming_back_is_told_once_and_a_new_outage_alarms_again(
    people, no_worker, frozen
):
    _beat(NOW - 10 * MINUTE)
    assert alarm.check(NOW) == "raised"

    # The worker is back: its first heartbeat clears the alarm and says so.
    frozen.move_to(NOW + 5 * MINUTE)
    heartbeat()
    back = _alarm_rows(title="The background worker is back")
    assert {row.recipient for row in back} == {people["manager"], people["admin"]}
    assert WorkerAlarm.objects.get().raised_at is None
    heartbeat()
    assert alarm.check(NOW + 6 * MINUTE) is None
    assert back.count() == 2

    # It dies again after its beat at 5 min: at 10 min it has been missing for 5, a second
    # outage and a second alarm; at 12 min that one is already out.
    frozen.move_to(NOW + 10 * MINUTE)
    assert alarm.check(NOW + 10 * MINUTE) == "raised"
    frozen.move_to(NOW + 12 * MINUTE)
    assert alarm.check(NOW + 12 * MINUTE) is None
    assert _alarm_rows(title__contains="missing").count() == 4


def test_a_web_process_sees_the_recovery_when_no_heartbeat_task_said_it(people, no_worker):
    _beat(NOW - 10 * MINUTE)
    assert alarm.check(NOW) == "raised"
    _beat(NOW + 2 * MINUTE)  # e.g. written before the alarm module was deployed
    assert alarm.check(NOW + 2 * MINUTE) == "recovered"
    assert alarm.check(NOW + 4 * MINUTE) is None
    assert _alarm_rows(title="The background worker is back").count() == 2


def test_a_worker_that_never_beat_is_missing_since_the_web_started_watching(people, no_worker):
    _watching_since(NOW)
    assert alarm.check(NOW + 2 * MINUTE) is None  # missing for 2 minutes: not yet
    assert alarm.check(NOW + 4 * MINUTE) == "raised"
    (row, *_) = _alarm_rows()
    assert "since never" in row.body


def test_a_live_worker_raises_nothing(people, no_worker):
    for minute in range(0, 30, 1):
        _beat(NOW + minute * MINUTE - dt.timedelta(seconds=20))
        assert alarm.check(NOW + minute * MINUTE) is None
    assert not _alarm_rows().exists()
    assert mail.outbox == []


def test_looks_are_claimed_once_per_interval(people, no_worker):
    _beat(NOW)
    assert alarm.check(NOW) is None
    checked = WorkerAlarm.objects.get().checked_at
    alarm.check(NOW + dt.timedelta(seconds=59))
    assert WorkerAlarm.objects.get().checked_at == checked  # another process looked just now
    alarm.check(NOW + dt.timedelta(seconds=60))
    assert WorkerAlarm.objects.get().checked_at == NOW + dt.timedelta(seconds=60)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_many_web_processes_looking_at_once_alarm_once(roles, no_worker):
    UserFactory(username="root", is_superuser=True)
    _beat(NOW - 10 * MINUTE)
    _watching_since(NOW - 10 * MINUTE)

    results = race([lambda: alarm.check(NOW + 2 * MINUTE) for _ in range(8)])

    assert results.count("raised") == 1, results
    assert results.count(None) == 7, results
    assert _alarm_rows().count() == 2
    assert len(mail.outbox) == 2


def test_smtp_down_leaves_the_alarm_in_the_inbox_and_its_emails_in_the_outbox(
    people, no_worker, settings
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = _closed_port()
    _beat(NOW - 10 * MINUTE)

    assert alarm.check(NOW) == "raised"

    rows = list(_alarm_rows())
    assert len(rows) == 2
    # Not failed: pending, so the relay sends them once a worker runs again.
    assert {row.email_status for row in rows} == {EmailStatus.PENDING}


def test_the_middleware_looks_after_a_request_and_not_again_for_a_while(people, no_worker, client):
    _beat(NOW - 10 * MINUTE)
    client.force_login(people["cam"])

    with time_machine.travel(NOW, tick=False):
        response = client.get("/healthz")
    assert response.status_code == 503
    assert _alarm_rows().count() == 2

    with CaptureQueriesContext(connection) as queries, time_machine.travel(NOW + 5 * MINUTE):
        client.get("/healthz")
    assert not [q for q in queries if "health_workeralarm" in q["sql"]]  # this process waits


def test_healthz_tells_staff_the_worker_is_missing(people, client):
    _beat(NOW - 10 * MINUTE)
    client.force_login(people["admin"])
    with time_machine.travel(NOW, tick=False):
        body = client.get("/healthz").json()
    assert body["status"] == "failing"
    assert body["worker"]["ok"] is False
    assert body["worker"]["age_seconds"] == 600


def test_the_alarm_is_off_when_switched_off(people, client, settings):
    settings.WORKER_ALARM_ENABLED = False
    _beat(NOW - 10 * MINUTE)
    with time_machine.travel(NOW, tick=False):
        client.get("/healthz")
    assert not WorkerAlarm.objects.exists()
    assert not _alarm_rows().exists()


def test_a_failed_look_is_logged_and_the_page_still_answers(people, client, monkeypatch, caplog):
    def broken(now=None):
        raise RuntimeError("database gone")

    monkeypatch.setattr(alarm, "check", broken)
    client.force_login(people["cam"])
    with caplog.at_level(logging.ERROR, logger="health.alarm"):
        response = client.get("/")
    assert response.status_code == 302  # home sends the CAM on to My work
    assert "Worker alarm check failed" in caplog.text
