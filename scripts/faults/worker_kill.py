"""Fault: the Celery worker SIGKILLed in the middle of delivering emails.

M notification rows are written through notifications.services.send (one per recipient and
case, as the app writes them), each handed to the broker; the SMTP sink takes a fraction of
a second per message, so deliveries are in flight when the worker's whole process group is
SIGKILLed. A new worker starts a moment later. Recovery is the time from the kill until
every row is sent; none may be lost, and a message sent again must carry the same
Message-ID. The outbox's lease and relay run with the production settings, whatever they
are (OUTBOX_LEASE_SECONDS, OUTBOX_RELAY_AFTER_SECONDS, the relay's beat period).
"""

import signal
import time

import outbox
from stack import Stack, report, size_args


def main():
    args = size_args(__doc__).parse_args()
    m, bound_s = (30, 150) if args.small else (80, 600)
    with Stack(
        "worker", http_port=args.http_port, smtp_port=args.smtp_port, redis_port=args.redis_port
    ) as stack:
        stack.prepare_database()
        stack.start_redis()
        stack.start_smtp(delay=0.25)
        stack.start_worker(concurrency=2)
        stack.start_beat()
        stack.django()
        from django.conf import settings
        from django.contrib.auth import get_user_model
        from django.db.models import Max

        from notifications.models import EmailStatus, Notification, NotificationKind
        from notifications.services import send
        from offboarding.models import Case

        # Let the first worker come up before there is anything to deliver.
        time.sleep(3)
        start_pk = Notification.objects.aggregate(m=Max("pk"))["m"] or 0
        users = list(get_user_model().objects.order_by("pk"))
        cases = list(Case.objects.order_by("pk"))
        kinds = (NotificationKind.CASE_OPENED, NotificationKind.CASE_CLOSED)
        pairs = [(u, c, k) for k in kinds for c in cases for u in users][:m]
        if len(pairs) < m:
            raise SystemExit(f"only {len(pairs)} (user, case, kind) for {m} emails")
        for user, case, kind in pairs:
            send(
                [user],
                kind=kind,
                case=case,
                title=f"Fault suite: delivery to {user} about case {case.pk}",
            )

        def sent():
            return Notification.objects.filter(
                pk__gt=start_pk, email_status=EmailStatus.SENT
            ).count()

        # Kill once some are out and most are still to go: deliveries are in flight.
        stack.wait_for(
            "the first deliveries", lambda: sent() >= max(m // 5, 2), seconds=60, every=0.05
        )
        sent_at_kill = sent()
        killed_at = time.monotonic()
        stack.kill("worker", signal.SIGKILL)
        # Claimed by the dead worker (the lease brings them back) and still pending (those
        # the dead worker had reserved from the broker come back through the relay).
        sending_at_kill = Notification.objects.filter(
            pk__gt=start_pk, email_status=EmailStatus.SENDING
        ).count()
        pending_at_kill = Notification.objects.filter(
            pk__gt=start_pk, email_status=EmailStatus.PENDING
        ).count()
        time.sleep(1)
        stack.start_worker(concurrency=2)

        recovery_s = None
        while time.monotonic() - killed_at < bound_s:
            if not outbox.owed(start_pk):
                recovery_s = time.monotonic() - killed_at
                break
            time.sleep(0.5)
        time.sleep(1)
        tally = outbox.tally(stack, start_pk)
        figures = {
            "emails": m,
            "sent_before_kill": sent_at_kill,
            "sending_at_kill": sending_at_kill,
            "pending_at_kill": pending_at_kill,
            "lost": tally["lost"],
            "duplicated": tally["duplicated"],
            "resends_same_message_id": tally["resends"],
            "recovery_s": round(recovery_s, 1) if recovery_s is not None else f">{bound_s}",
            "lease_s": settings.OUTBOX_LEASE_SECONDS,
            "relay_after_s": settings.OUTBOX_RELAY_AFTER_SECONDS,
            "relay_every_s": settings.CELERY_BEAT_SCHEDULE["relay-outbox"]["schedule"],
        }
        failures = []
        if recovery_s is None or recovery_s > 90:
            failures.append(f"recovery took {figures['recovery_s']} s (target 90)")
        if tally["lost"]:
            failures.append(f"{tally['lost']} email(s) not delivered")
        if tally["duplicated"]:
            failures.append(f"{tally['duplicated']} duplicated effect(s)")
        if failures:
            stack.tail_logs()
        raise SystemExit(report("worker_kill", figures, failures))


if __name__ == "__main__":
    main()
