"""Email delivery survives real failures: a broker outage, a worker killed mid-send, an SMTP
server that says "try later". Real processes: a private redis-server, a Celery worker
subprocess on the test database, and an SMTP sink (aiosmtpd) in this process.

Each message is counted by its Message-ID (the row's delivery key), so "exactly once" means
the sink accepted that Message-ID once, however many times it was relayed or retried.
"""

import asyncio
import datetime as dt
import email
import importlib.util
import json
import os
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from unittest import mock

import pytest
import redis
from aiosmtpd.controller import Controller
from django.conf import settings as django_settings
from django.db import connection, transaction
from kombu import pools

from notifications import delivery
from notifications import services as notify
from notifications.models import EmailStatus, Notification, NotificationKind
from notifications.tasks import relay_outbox
from offboarding.demo import drive
from offboarding.models import CaseEvent, EventKind
from partnerops.celery import app as celery_app
from tests.factories import CaseFactory, UserFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

BASE_DIR = Path(django_settings.BASE_DIR)
QUEUE = "celery"  # kombu's Redis list for the default queue
UNACKED = "unacked"  # kombu's Redis hash of delivered-but-unacknowledged messages


# ---------------------------------------------------------------- helpers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, *, timeout: float, what: str, interval: float = 0.1, log=None):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            detail = f"\n--- worker log ---\n{log()}" if log else ""
            raise AssertionError(f"Timed out after {timeout}s waiting for {what}{detail}")
        time.sleep(interval)


def message_id(notification: Notification) -> str:
    return f"<{notification.delivery_key}@partnerops>"


def stop_process(process: subprocess.Popen, *, group: bool = False, timeout: float = 5) -> None:
    if process.poll() is not None:
        return
    try:
        if group:
            os.killpg(process.pid, signal.SIGTERM)
        else:
            process.terminate()
        process.wait(timeout=timeout)
    except (subprocess.TimeoutExpired, ProcessLookupError):
        pass
    if process.poll() is None:
        try:
            if group:
                os.killpg(process.pid, signal.SIGKILL)
            else:
                process.kill()
        except ProcessLookupError:
            pass
        process.wait(timeout=timeout)


class PrivateRedis:
    """A redis-server of our own on a free port; never the machine's shared one."""

    def __init__(self, workdir: Path):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.workdir = workdir
        self.process = None

    def start(self):
        assert self.process is None or self.process.poll() is not None
        self.process = subprocess.Popen(
            [  # noqa: S607 - Debian's redis-server from the PATH, as the Makefile runs it
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

        def answers():
            try:
                return self.client().ping()
            except redis.RedisError:
                return False

        wait_for(answers, timeout=10, what=f"redis-server on port {self.port}")

    def stop(self):
        if self.process is not None:
            stop_process(self.process)

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=1)

    def queue_length(self) -> int:
        return self.client().llen(QUEUE)

    def unacked(self) -> dict:
        return self.client().hgetall(UNACKED)


class Sink:
    """SMTP handler recording accepted messages by Message-ID.

    `stall_first`: the first DATA is held open (the message fully transmitted, no reply
    yet) and never accepted, so a worker killed meanwhile has not delivered it.
    `fail_first`: that many DATA commands are answered 451 (try again later).
    """

    def __init__(self, *, stall_first=False, fail_first=0, stall_seconds=30):
        self.stall_first = stall_first
        self.fail_first = fail_first
        self.stall_seconds = stall_seconds
        self.lock = threading.Lock()
        self.accepted = []  # Message-IDs, in order
        self.rejected = []  # (Message-ID, monotonic time) of 451 answers
        self.attempt_times = []  # monotonic time of every DATA, in order
        self.stalled = []
        self.stall_started = threading.Event()

    async def handle_DATA(self, server, session, envelope):
        mid = email.message_from_bytes(envelope.content)["Message-ID"]
        with self.lock:
            self.attempt_times.append(time.monotonic())
            stall = self.stall_first and not self.stalled
            if stall:
                self.stalled.append(mid)
            fail = not stall and len(self.rejected) < self.fail_first
            if fail:
                self.rejected.append(mid)
        if stall:
            self.stall_started.set()
            await asyncio.sleep(self.stall_seconds)  # cancelled when the client vanishes
            return "451 4.3.0 Stalled and never accepted"
        if fail:
            return "451 4.3.0 Try again later"
        with self.lock:
            self.accepted.append(mid)
        return "250 2.0.0 Message accepted for delivery"

    def accepted_count(self) -> int:
        with self.lock:
            return len(self.accepted)

    def counts(self) -> Counter:
        with self.lock:
            return Counter(self.accepted)


class Worker:
    def __init__(self, process: subprocess.Popen, logfile: Path):
        self.process = process
        self.logfile = logfile

    def log(self) -> str:
        try:
            return self.logfile.read_text(errors="replace")[-6000:]
        except FileNotFoundError:
            return ""

    def wait_ready(self, timeout=30):
        def ready():
            if self.process.poll() is not None:
                raise AssertionError(f"Celery worker exited early:\n{self.log()}")
            return " ready." in self.log()

        wait_for(ready, timeout=timeout, what="the Celery worker to be ready", log=self.log)

    def kill(self):
        """SIGKILL the whole worker: main process and pool children, no goodbyes."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)


def _redis_transport_options(url: str) -> dict:
    """The broker options production derives from REDIS_URL (the same the worker uses)."""
    spec = importlib.util.spec_from_file_location(
        "partnerops.settings._redis_probe", BASE_DIR / "partnerops" / "settings" / "base.py"
    )
    module = importlib.util.module_from_spec(spec)  # a fresh copy, not the loaded settings
    with mock.patch.dict(os.environ, {"REDIS_URL": url}):
        spec.loader.exec_module(module)
    return module.CELERY_BROKER_TRANSPORT_OPTIONS


def _reset_producer_pools(app):
    # kombu keeps its pools in a registry keyed by broker URL: closing the app's pool without
    # forgetting it left the suite's own URL with a closed pool ("Acquire on closed pool" in
    # every later eager publish). reset() closes them all and empties the registry.
    pools.reset()
    app._pool = None
    app.amqp._producer_pool = None


# ---------------------------------------------------------------- fixtures


@pytest.fixture
def private_redis(tmp_path):
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def producer_on_private_redis(private_redis, settings):
    """This process publishes to the private Redis for real (not eagerly), and its outbox
    timings match the worker's."""
    settings.OUTBOX_RELAY_AFTER_SECONDS = 1
    settings.OUTBOX_LEASE_SECONDS = 3
    settings.EMAIL_RETRY_BASE_SECONDS = 1
    keys = ("broker_url", "task_always_eager", "broker_transport_options")
    saved = {key: celery_app.conf[key] for key in keys}
    _reset_producer_pools(celery_app)
    celery_app.conf.broker_url = private_redis.url
    celery_app.conf.task_always_eager = False
    celery_app.conf.broker_transport_options = _redis_transport_options(private_redis.url)
    yield celery_app
    _reset_producer_pools(celery_app)
    for key, value in saved.items():
        celery_app.conf[key] = value


@pytest.fixture
def start_sink():
    controllers = []

    def start(**behaviour) -> tuple[Sink, int]:
        sink = Sink(**behaviour)
        port = free_port()
        controller = Controller(sink, hostname="127.0.0.1", port=port)
        controller.start()
        controllers.append(controller)
        return sink, port

    yield start
    for controller in controllers:
        controller.stop()


@pytest.fixture
def start_worker(private_redis, tmp_path):
    workers = []
    db = connection.settings_dict
    credentials = db["USER"] or "postgres"
    if db.get("PASSWORD"):
        credentials += f":{db['PASSWORD']}"
    database_url = (
        f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    )

    def start(smtp_port: int) -> Worker:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "partnerops.settings.dev",
            "DATABASE_URL": database_url,
            "REDIS_URL": private_redis.url,
            "CELERY_TASK_ALWAYS_EAGER": "0",
            "DJANGO_EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "DJANGO_EMAIL_HOST": "127.0.0.1",
            "DJANGO_EMAIL_PORT": str(smtp_port),
            "PARTNEROPS_OUTBOX_RELAY_AFTER_SECONDS": "1",
            "PARTNEROPS_OUTBOX_LEASE_SECONDS": "3",
            "PARTNEROPS_EMAIL_RETRY_BASE_SECONDS": "1",
            "PARTNEROPS_VAR_DIR": str(tmp_path / "var"),
            "PYTHONUNBUFFERED": "1",
        }
        logfile = tmp_path / f"worker-{len(workers)}.log"
        with logfile.open("wb") as out:
            process = subprocess.Popen(
                [
                    str(BASE_DIR / ".venv" / "bin" / "celery"),
                    "-A",
                    "partnerops",
                    "worker",
                    "--concurrency=1",
                    "--pool=prefork",
                    "-l",
                    "info",
                    "-n",
                    f"resilience-{uuid.uuid4().hex[:8]}@%h",
                    "--without-mingle",
                    "--without-gossip",
                    "--without-heartbeat",
                ],
                cwd=BASE_DIR,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        worker = Worker(process, logfile)
        workers.append(worker)
        worker.wait_ready()
        return worker

    yield start
    for worker in workers:
        stop_process(worker.process, group=True)


def _wait_until_drained(private_redis, *, leftover_unacked=0, log=None, timeout=20):
    """Every queued task has been taken and acknowledged (acks_late: after it ran)."""
    wait_for(
        lambda: (
            private_redis.queue_length() == 0 and len(private_redis.unacked()) == leftover_unacked
        ),
        timeout=timeout,
        what="the worker to finish every queued task",
        log=log,
    )


def _notify_one(username: str) -> Notification:
    user = UserFactory(username=username)
    with transaction.atomic():  # enqueued on commit, as when a step is recorded
        (row,) = notify.send(
            [user], kind=NotificationKind.CASE_OPENED, title=f"Hello {username}", body="Hi."
        )
    assert row.email_status == EmailStatus.PENDING  # as written; the worker may have it now
    return row


# ---------------------------------------------------------------- tests


def test_steps_recorded_while_redis_is_down_are_emailed_once_after_it_returns(
    roles, private_redis, producer_on_private_redis, start_sink, start_worker
):
    sink, smtp_port = start_sink()
    private_redis.stop()

    # Redis is down: the case opens and moves 2 → 4 → 5 → 6 → 7; nothing may raise.
    case = CaseFactory(state="step_2", actors=roles)
    case = drive(case, until="step_7", actors=roles)

    assert case.state == "step_7"
    assert (
        CaseEvent.objects.filter(case=case, kind=EventKind.STEP_COMPLETED).count() == 5
    )  # step 1 (opening) and steps 2, 4, 5, 6
    emailed = list(Notification.objects.filter(email_status=EmailStatus.PENDING))
    assert len(emailed) >= 3, "the steps should have notified several people by email"
    assert not Notification.objects.filter(
        email_status__in=[EmailStatus.SENT, EmailStatus.SENDING, EmailStatus.FAILED]
    ).exists()
    assert all(row.email_attempts == 0 for row in emailed)

    private_redis.start()  # same port, empty: whatever was "enqueued" during the outage is gone
    assert private_redis.queue_length() == 0
    worker = start_worker(smtp_port)

    ids = {row.pk for row in emailed}
    wait_for(lambda: ids <= set(delivery.relay()), timeout=5, what="rows due for the relay")
    assert relay_outbox() == len(ids)
    relay_outbox()  # the relay fires again before the worker is through: duplicates queued

    wait_for(
        lambda: (
            Notification.objects.filter(pk__in=ids, email_status=EmailStatus.SENT).count()
            == len(ids)
        ),
        timeout=30,
        what="every row to be sent",
        log=worker.log,
    )
    _wait_until_drained(private_redis, log=worker.log)

    expected = {message_id(row): 1 for row in emailed}
    assert sink.counts() == expected, worker.log()
    for row in Notification.objects.filter(pk__in=ids):
        assert row.email_status == EmailStatus.SENT
        assert row.email_attempts == 1  # duplicates found the row claimed and sent nothing
        assert row.emailed_at is not None
    assert relay_outbox() == 0


def test_a_worker_killed_mid_delivery_leaves_the_email_to_be_sent_once(
    private_redis, producer_on_private_redis, start_sink, start_worker
):
    sink, smtp_port = start_sink(stall_first=True)
    first = start_worker(smtp_port)

    row = _notify_one("killed")
    mid = message_id(row)

    # The worker has claimed the row and transmitted the message; the server has not replied.
    assert sink.stall_started.wait(20), first.log()
    assert sink.stalled == [mid]
    row.refresh_from_db()
    assert (row.email_status, row.email_attempts) == (EmailStatus.SENDING, 1)
    assert sink.accepted_count() == 0

    first.kill()

    row.refresh_from_db()
    assert row.email_status == EmailStatus.SENDING  # held until the lease runs out
    assert len(private_redis.unacked()) == 1  # acks_late: the task message was not lost
    assert sink.accepted_count() == 0

    second = start_worker(smtp_port)
    wait_for(
        lambda: row.pk in delivery.relay(), timeout=15, what="the lease to expire for the relay"
    )
    assert relay_outbox() == 1

    wait_for(
        lambda: Notification.objects.filter(pk=row.pk, email_status=EmailStatus.SENT).exists(),
        timeout=30,
        what="the row to be sent by the new worker",
        log=second.log,
    )
    _wait_until_drained(private_redis, leftover_unacked=1, log=second.log)
    assert sink.counts() == {mid: 1}, second.log()

    # Later Redis redelivers the dead worker's message (its visibility timeout): a no-op.
    client = private_redis.client()
    for tag, raw in client.hgetall(UNACKED).items():
        payload, _exchange, _routing_key = json.loads(raw)
        client.lpush(QUEUE, json.dumps(payload))
        client.hdel(UNACKED, tag)
        client.zrem(f"{UNACKED}_index", tag)
    _wait_until_drained(private_redis, log=second.log)

    assert sink.counts() == {mid: 1}, second.log()
    row.refresh_from_db()
    assert row.email_status == EmailStatus.SENT
    assert row.email_attempts == 2  # the killed attempt and the one that succeeded
    assert relay_outbox() == 0


def test_an_smtp_server_deferring_twice_gets_the_email_once_on_the_third_attempt(
    private_redis, producer_on_private_redis, start_sink, start_worker
):
    sink, smtp_port = start_sink(fail_first=2)
    worker = start_worker(smtp_port)

    row = _notify_one("deferred")
    mid = message_id(row)

    wait_for(
        lambda: Notification.objects.filter(pk=row.pk, email_status=EmailStatus.SENT).exists(),
        timeout=30,
        what="the row to be sent after two deferrals",
        log=worker.log,
    )
    _wait_until_drained(private_redis, log=worker.log)

    assert sink.rejected == [mid, mid]
    assert sink.counts() == {mid: 1}, worker.log()
    row.refresh_from_db()
    assert row.email_status == EmailStatus.SENT
    assert row.email_attempts == 3
    assert row.email_error == ""
    assert row.emailed_at is not None
    # The retries waited their countdown (1 s, then 2 s) rather than hammering the server.
    first, second, third = sink.attempt_times
    assert second - first >= 0.8
    assert third - second >= 1.8
    assert row.emailed_at >= row.created_at + dt.timedelta(seconds=2.5)
