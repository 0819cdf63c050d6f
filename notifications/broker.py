"""Publishing outbox tasks without ever making a request wait for the broker.

Celery's own publish path, even with `retry=False`, re-tries the *connection* for up to
`broker_connection_timeout` (4 s) at 2 s intervals: with Redis down, every click that notified
someone waited about 6 s. Here a publish gets one connection attempt, a socket timeout of
`BROKER_PUBLISH_TIMEOUT_SECONDS` (a frozen Redis accepts the TCP connection and never answers,
so the connect timeout alone is not enough), and after a failure a circuit breaker skips the
broker altogether for `BROKER_BREAKER_SECONDS` in this process.

Nothing is lost by skipping: the row stays in the outbox (`pending`) and the relay
(`notifications.tasks.relay_outbox`, on the beat) hands it to a worker once the broker answers.
The breaker is per process on purpose: it needs no shared store that could itself be down, and
a process that has not seen the failure pays at most one short timeout before it opens its own.
"""

import logging
import threading
import time

from celery import current_app
from django.conf import settings
from kombu import pools

logger = logging.getLogger(__name__)

_lock = threading.Lock()
# Per broker URL, the time.monotonic() until which it is skipped. Keyed by URL because a
# different broker is a different circuit (and the fault tests run one per test).
_open_until: dict[str, float] = {}


def _producer_options() -> dict:
    timeout = settings.BROKER_PUBLISH_TIMEOUT_SECONDS
    return {
        # One connection attempt, no sleeping between attempts (kombu's ensure_connection).
        "max_retries": 0,
        "socket_connect_timeout": timeout,
        "socket_timeout": timeout,
    }


def _app():
    return current_app._get_current_object()


def _broker_key(app) -> str:
    return str(app.conf.broker_write_url or app.conf.broker_url)


def _producer_pool(app):
    """Celery's producers, on a connection with the short options above. kombu keys its pools
    by connection (URL and transport options), so these are separate from the worker's and
    the beat's connections, which keep their patient defaults; each process has its own."""
    connection = app.connection_for_write(
        connect_timeout=settings.BROKER_PUBLISH_TIMEOUT_SECONDS,
        transport_options=_producer_options(),
    )
    return pools.producers[connection]


def breaker_open(app=None) -> bool:
    return time.monotonic() < _open_until.get(_broker_key(app or _app()), 0.0)


def reset_breaker() -> None:
    with _lock:
        _open_until.clear()


def _trip(app, error: Exception) -> None:
    with _lock:
        _open_until[_broker_key(app)] = time.monotonic() + settings.BROKER_BREAKER_SECONDS
    logger.warning(
        "Broker unavailable (%r); not trying it again for %ss in this process. "
        "The outbox relay delivers what is left pending.",
        error,
        settings.BROKER_BREAKER_SECONDS,
    )


def publish(task, args: tuple, *, probe: bool = False, **options) -> bool:
    """Send `task` with `args`; False when the broker was skipped or failed (the caller's
    rows stay in the outbox for the relay). Never raises for a broker problem.

    `probe`: try even while the breaker is open (the relay, which is how rows get out once
    the broker is back); a success closes the breaker for the requests of this process."""
    app = _app()
    if app.conf.task_always_eager:
        # Tests and CELERY_TASK_ALWAYS_EAGER run the task here; there is no broker to guard.
        task.apply_async(args, **options)
        return True
    if not probe and breaker_open(app):
        return False
    timeout = settings.BROKER_PUBLISH_TIMEOUT_SECONDS
    try:
        with _producer_pool(app).acquire(block=True, timeout=timeout) as producer:
            task.apply_async(args, producer=producer, retry=False, **options)
    except Exception as error:  # any broker failure: the relay covers it
        _trip(app, error)
        return False
    if _open_until:
        with _lock:
            _open_until.pop(_broker_key(app), None)
    return True
