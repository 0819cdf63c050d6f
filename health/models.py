from django.db import models


class WorkerHeartbeat(models.Model):
    """When a Celery worker last ran the beat's heartbeat task: proof worker and beat live."""

    name = models.CharField(max_length=40, unique=True)
    beat_at = models.DateTimeField()

    def __str__(self):
        return f"{self.name} @ {self.beat_at:%Y-%m-%d %H:%M:%S}"


class WorkerAlarm(models.Model):
    """The web processes' watch over the worker heartbeat (health/alarm.py): one row.

    `checked_at` is claimed with a conditional UPDATE, so all web processes together look at
    most once per interval; `raised_at` is set (and cleared) the same way, so an outage is
    announced once, and so is its end.
    """

    name = models.CharField(max_length=40, unique=True)
    # When the web processes started watching: a worker that never beat is missing since then.
    watching_since = models.DateTimeField()
    checked_at = models.DateTimeField()
    # The open alarm: when it went out, and the last heartbeat seen then (none if never).
    raised_at = models.DateTimeField(null=True, blank=True)
    last_beat_when_raised = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"{self.name}: {'raised' if self.raised_at else 'quiet'}"
