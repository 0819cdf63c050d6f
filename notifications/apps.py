from django.apps import AppConfig
from django.core import checks


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"

    def ready(self):
        checks.register(check_outbox_lease)
        # The outbox hands rows to its task by name (services does not import tasks, which
        # call services); registering the tasks here makes the name known in every process,
        # not only in a worker, whose autodiscovery would import them.
        from . import tasks  # noqa: F401


def check_outbox_lease(app_configs=None, **kwargs):
    """`manage.py check` refuses a lease a live sender could outlast: the relay would hand the
    row to a second worker while the first is still sending it (notifications/delivery.py)."""
    from django.conf import settings

    lease = settings.OUTBOX_LEASE_SECONDS
    limit = settings.OUTBOX_SEND_TIME_LIMIT_SECONDS
    if lease <= limit:
        return [
            checks.Error(
                f"PARTNEROPS_OUTBOX_LEASE_SECONDS ({lease}) must be longer than "
                f"PARTNEROPS_OUTBOX_SEND_TIME_LIMIT_SECONDS ({limit}), the email task's hard "
                "time limit.",
                hint="Keep the defaults (45 and 30), or raise the lease with the limit.",
                id="notifications.E001",
            )
        ]
    return []
