"""Telling people the worker is gone, by a path that does not need the worker.

Everything that notifies (emails, reminders, escalations, digests) runs on the Celery worker,
so a dead worker would otherwise be noticed only when someone wonders why nothing arrives.
The web processes watch its heartbeat instead (health/tasks.py writes it every 30 s): after a
request has been answered, a process looks at most every half interval, and a conditional
UPDATE of `WorkerAlarm.checked_at` lets one look through per WORKER_ALARM_CHECK_EVERY_SECONDS
among all of them. When the heartbeat has been missing for WORKER_ALARM_AFTER_SECONDS, the
look that sets `raised_at` (again a conditional UPDATE, so once per outage) writes in-app
notifications to the partner-ops managers and the superusers and emails them from this
process, with a short SMTP timeout. When the heartbeat is back, whoever clears `raised_at`
first (the worker's heartbeat task or a web process) says so, through the ordinary outbox.
"""

import datetime as dt
import logging
import threading
import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import get_connection
from django.db import transaction
from django.utils import timezone

from notifications import delivery
from notifications import services as notify
from notifications.models import EmailStatus, NotificationKind

from .models import WorkerAlarm, WorkerHeartbeat

logger = logging.getLogger(__name__)

NAME = "worker"

_lock = threading.Lock()
_next_look = 0.0  # time.monotonic() of this process's next look


def recipients() -> list:
    superusers = get_user_model().objects.filter(is_superuser=True, is_active=True)
    return [*notify.managers(), *superusers]


def _when(moment: dt.datetime | None) -> str:
    return f"{timezone.localtime(moment):%a %d %b %H:%M:%S %Z}" if moment else "never"


def _email_now(rows) -> None:
    """Send the alarm's emails from this process: the worker that would send them is what is
    missing. Each row is claimed as a worker would claim it, so a worker that is only slow
    cannot send it a second time; on the first failure the rest stay pending for the relay."""
    pending = [row.pk for row in rows if row.email_status == EmailStatus.PENDING]
    if not pending:
        return
    try:
        with get_connection(timeout=settings.WORKER_ALARM_EMAIL_TIMEOUT_SECONDS) as connection:
            for pk in pending:
                if delivery.deliver(pk, connection=connection).status in ("retry", "failed"):
                    break
    except Exception:  # SMTP unreachable: the rows wait in the outbox, the in-app ones stand
        logger.exception("Could not email the worker alarm; it is in the inbox.")


def _raise(now: dt.datetime, beat: dt.datetime | None, since: dt.datetime) -> bool:
    with transaction.atomic():
        claimed = WorkerAlarm.objects.filter(name=NAME, raised_at__isnull=True).update(
            raised_at=now, last_beat_when_raised=beat
        )
        if not claimed:
            return False  # already announced for this outage
        minutes = int((now - since).total_seconds() // 60)
        rows = notify.send(
            recipients(),
            kind=NotificationKind.WORKER_ALARM,
            title=f"The background worker has been missing for {minutes} min",
            body=(
                f"No heartbeat from the Celery worker since {_when(beat)}. Until it is back, "
                "no email, reminder, escalation or digest goes out; they are kept and sent "
                "once it runs again. `make run` restarts it by itself; in the compose stack, "
                "see `docker compose ps worker beat`. /healthz shows the detail to staff."
            ),
        )
    logger.error("Worker heartbeat missing since %s: alarm raised.", _when(beat))
    _email_now(rows)
    return True


def clear(now: dt.datetime | None = None, beat: dt.datetime | None = None) -> bool:
    """The worker is back: whoever clears the open alarm announces it (once)."""
    now = now or timezone.now()
    raised_at = (
        WorkerAlarm.objects.filter(name=NAME, raised_at__isnull=False)
        .values_list("raised_at", flat=True)
        .first()
    )
    if raised_at is None:
        return False
    with transaction.atomic():
        # Conditional on the alarm we read: of two clearers, one updates a row, the other none.
        if not WorkerAlarm.objects.filter(name=NAME, raised_at=raised_at).update(
            raised_at=None, last_beat_when_raised=None
        ):
            return False
        notify.send(
            recipients(),
            kind=NotificationKind.WORKER_ALARM,
            title="The background worker is back",
            body=(
                f"Heartbeat at {_when(beat or now)}; the alarm went out at {_when(raised_at)}. "
                "What waited meanwhile is being sent now."
            ),
        )
    logger.warning("Worker heartbeat back at %s: alarm cleared.", _when(beat or now))
    return True


def check(now: dt.datetime | None = None) -> str | None:
    """Look at the heartbeat if this interval's look is ours: "raised" when this look raised
    the alarm, "recovered" when it cleared it, None otherwise."""
    now = now or timezone.now()
    every = dt.timedelta(seconds=settings.WORKER_ALARM_CHECK_EVERY_SECONDS)
    alarm, _ = WorkerAlarm.objects.get_or_create(
        name=NAME, defaults={"watching_since": now, "checked_at": now - every}
    )
    if not WorkerAlarm.objects.filter(pk=alarm.pk, checked_at__lte=now - every).update(
        checked_at=now
    ):
        return None  # another process (or this one) looked less than an interval ago
    beat = WorkerHeartbeat.objects.filter(name="worker").values_list("beat_at", flat=True).first()
    since = beat or alarm.watching_since
    if now - since > dt.timedelta(seconds=settings.WORKER_ALARM_AFTER_SECONDS):
        return "raised" if _raise(now, beat, since) else None
    if alarm.raised_at is not None and clear(now, beat):
        return "recovered"
    return None


def _due() -> bool:
    """Whether this process should look now: at most every half interval, so the shared
    interval is seldom missed and the database sees one UPDATE per process in that time."""
    global _next_look
    moment = time.monotonic()
    with _lock:
        if moment < _next_look:
            return False
        _next_look = moment + settings.WORKER_ALARM_CHECK_EVERY_SECONDS / 2
        return True


def reset() -> None:
    """Forget this process's last look (tests)."""
    global _next_look
    with _lock:
        _next_look = 0.0


class WorkerAlarmMiddleware:
    """Looks after the response is made; a failed look is logged, never the request's error."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if settings.WORKER_ALARM_ENABLED and _due():
            try:
                check()
            except Exception:  # the database may be what is down; the page is answered
                logger.exception("Worker alarm check failed")
        return response
