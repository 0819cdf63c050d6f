from celery import shared_task
from django.utils import timezone

from . import alarm
from .models import WorkerHeartbeat


@shared_task(ignore_result=True)
def heartbeat():
    now = timezone.now()
    WorkerHeartbeat.objects.update_or_create(name="worker", defaults={"beat_at": now})
    # Back after an outage the web processes announced: say so at once, not at their next look.
    alarm.clear(now, beat=now)
