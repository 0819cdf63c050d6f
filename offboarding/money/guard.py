"""The payment guard (Decision D): from the moment a case knows the partner's offboard date,
nothing is paid or accrued after it without an override approved by a second CAR user.

"After" runs on both clocks: the date the payment or line carries, and the day it is
recorded (the organisation's local date). Recording on the offboard date itself is allowed.
The rules are here; `offboarding.money.overrides` asks for, approves and uses overrides.
"""

import datetime as dt

from django.db.models import Case as DbCase
from django.db.models import F, OuterRef, Q, Subquery, Value, When
from django.utils import timezone

from offboarding.models import Case
from offboarding.process import CaseState
from payouts.models import Payment


class GuardRefused(Exception):
    """The partner has left the program: the message says what and since when."""


def _latest_case_date(cases):
    """The offboard date of the latest of `cases`, unless it was withdrawn (the partner is
    in the program again) or has no notice yet."""
    return (
        cases.order_by("-opened_at", "-pk")
        .annotate(
            guarded_date=DbCase(
                When(state=CaseState.WITHDRAWN, then=Value(None)), default=F("offboard_date")
            )
        )
        .values_list("guarded_date", flat=True)
    )


def with_offboard_dates(partners):
    """`partners` with the date `offboard_date_of` reads, in the same query (for a list)."""
    return partners.annotate(
        case_offboard_date=Subquery(
            _latest_case_date(Case.objects.filter(partner=OuterRef("pk")))[:1]
        )
    )


def offboard_date_of(partner) -> dt.date | None:
    """The offboard date of the partner's latest case, known from step 2 or 3 (a withdrawn
    case leaves the partner in the program); the record's own date for a partner offboarded
    without a case here."""
    if hasattr(partner, "case_offboard_date"):  # read by with_offboard_dates
        from_case = partner.case_offboard_date
    else:
        from_case = _latest_case_date(partner.offboarding_cases.all()).first()
    return from_case or partner.offboard_date


def is_after(cutoff: dt.date | None, *, on: dt.date, recorded_on: dt.date | None = None) -> bool:
    """Is something dated `on` and recorded `recorded_on` (today) after the offboard date?"""
    if cutoff is None:
        return False
    recorded_on = recorded_on or timezone.localdate()
    return on > cutoff or recorded_on > cutoff


def check(partner, *, on: dt.date, what: str) -> None:
    """Refuse `what` dated `on` once the partner's offboard date has passed (no override)."""
    cutoff = offboard_date_of(partner)
    if is_after(cutoff, on=on):
        raise GuardRefused(
            f"{partner} leaves or left the program on {cutoff:%Y-%m-%d}: no {what} can be "
            "recorded after it without an override approved by a second CAR user."
        )


def flag_payments_after(partner, cutoff: dt.date | None) -> int:
    """Mark the partner's payments dated or recorded after `cutoff` as exceptions: when a
    payment is recorded, and when a case fixes the date (a notice recorded late can put it
    behind payments already made). The only writer of `Payment.after_offboard_date`.

    Flags are only ever set: a payment that was an exception stays one."""
    if cutoff is None:
        return 0
    local_day_after = dt.datetime.combine(
        cutoff + dt.timedelta(days=1), dt.time(0), tzinfo=timezone.get_current_timezone()
    )
    return (
        Payment.objects.filter(payout__partner=partner, after_offboard_date=False)
        .filter(Q(paid_on__gt=cutoff) | Q(recorded_at__gte=local_day_after))
        .update(after_offboard_date=True)
    )
