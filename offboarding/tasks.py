"""The offboarding app's Celery tasks (beat runs them; each claims its rows first)."""

from celery import shared_task
from django.db import transaction
from django.utils import timezone

from notifications import services as notify
from notifications.models import NotificationKind
from payouts.selectors import payments_after_offboard_date

from . import digest, sweep
from .process import LANE_PERMISSION, Lane


@shared_task(acks_late=True)
def sweep_deadlines():
    result = sweep.run()
    return {"reminded": result.reminded, "escalated": result.escalated}


@shared_task(acks_late=True)
def send_daily_digests():
    return digest.send_daily_digests()


@shared_task(acks_late=True)
def report_payments_after_offboard():
    """Tell CAR and the partner-ops manager, once, about each payment dated after its
    partner's offboard date. Each payment is claimed with a conditional update."""
    reported = 0
    for payment in payments_after_offboard_date().filter(exception_reported_at__isnull=True)[:500]:
        with transaction.atomic():
            claimed = (
                type(payment)
                .objects.filter(pk=payment.pk, exception_reported_at__isnull=True)
                .update(exception_reported_at=timezone.now())
            )
            if not claimed:
                continue
            partner = payment.payout.partner
            notify.send(
                [*notify.users_with_permission(LANE_PERMISSION[Lane.CAR]), *notify.managers()],
                kind=NotificationKind.PAYMENT_EXCEPTION,
                case=payment.case,
                title=f"Payment to offboarded partner {partner}: {payment.amount} "
                f"{payment.currency} on {payment.paid_on:%Y-%m-%d}",
                body=f"Offboard date {partner.offboard_date:%Y-%m-%d}. Reference "
                f"{payment.reference}, recorded by {payment.recorded_by.get_username()}. "
                f"Override: {payment.override.reason if payment.override else 'none'}.",
            )
            reported += 1
    return reported
