"""/healthz: is the database answering, the broker reachable, and a worker alive?

Anyone (a load balancer, a container health check) gets only the verdict, `{"status":
"ok"}` with 200 or `{"status": "failing"}` with 503. The detail of each check, whose error
text can name hosts, users and driver messages, is for logged-in staff users only.
"""

import datetime as dt

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from .models import WorkerHeartbeat


def _database() -> dict:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return {"ok": True, "vendor": connection.vendor}
    except Exception as error:  # reported, not raised: this page exists to say what is down
        return {"ok": False, "error": str(error)[:200]}


def _broker() -> dict:
    if not settings.REDIS_URL:
        return {"ok": True, "kind": "embedded filesystem broker"}
    try:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        # The publisher's short timeout and no retries (redis-py retries 3 times by default):
        # with Redis down or frozen this check answers within about a second, not 8.
        timeout = settings.BROKER_PUBLISH_TIMEOUT_SECONDS
        client = redis.Redis.from_url(
            settings.REDIS_URL,
            socket_connect_timeout=timeout,
            socket_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )
        client.ping()
        return {"ok": True, "kind": "redis"}
    except Exception as error:
        return {"ok": False, "kind": "redis", "error": str(error)[:200]}


def _worker() -> dict:
    try:
        beat = (
            WorkerHeartbeat.objects.filter(name="worker").values_list("beat_at", flat=True).first()
        )
    except Exception as error:
        return {"ok": False, "error": str(error)[:200]}
    if beat is None:
        return {"ok": False, "error": "no heartbeat yet"}
    age = (timezone.now() - beat).total_seconds()
    limit = settings.HEALTH_WORKER_MAX_AGE_SECONDS
    return {
        "ok": age <= limit,
        "last_heartbeat": beat.isoformat(),
        "age_seconds": round(age, 1),
        "max_age_seconds": limit,
    }


def _is_staff(request) -> bool:
    """Whether the caller may read the detail. Reading the session and the user needs the
    database, which may be the thing that is down: then nobody gets the detail, and the
    verdict is still answered (never a 500)."""
    try:
        user = request.user
        return bool(user.is_authenticated and user.is_active and user.is_staff)
    except Exception:
        return False


@never_cache
@login_not_required
@require_GET
def healthz(request):
    checks = {"database": _database(), "broker": _broker(), "worker": _worker()}
    healthy = all(check["ok"] for check in checks.values())
    body = {"status": "ok" if healthy else "failing"}
    if _is_staff(request):
        body |= {"time": dt.datetime.now(dt.UTC).isoformat(), **checks}
    return JsonResponse(body, status=200 if healthy else 503)
