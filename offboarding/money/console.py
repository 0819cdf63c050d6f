"""The CAR console: the cases waiting on money steps with each partner's open balance, the
verification queue, the overrides awaiting a second CAR user, and the payments that should
not exist. Each list shows the first CONSOLE_LIST_SIZE rows (the soonest due, the newest
payments) with the total and a link to the full list, so the page costs the same however
many cases are open. A fixed number of queries, reading only the columns shown."""

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Count, Exists, F, OuterRef, Sum
from django.utils import timezone

from offboarding import access, visibility
from offboarding.process import STEPS, CaseState, Lane
from payouts.models import (
    OUTSTANDING_STATUSES,
    Commission,
    CommissionStatus,
    Order,
    OrderStatus,
    Payment,
    Payout,
)
from payouts.money import CENT
from payouts.selectors import payments_after_offboard_rows

from .overrides import awaiting_approval

# CAR's steps: the four-eyes one is the verification queue; the others wait on CAR's work.
VERIFY_STATE = next(step.state for step in STEPS if step.lane == Lane.CAR and step.four_eyes)
WAITING_STATES = [step.state for step in STEPS if step.lane == Lane.CAR and not step.four_eyes]
MONEY_STATES = [*WAITING_STATES, VERIFY_STATE]
CONSOLE_LIST_SIZE = 25
STATE_LABELS = dict(CaseState.choices)

_CASE_COLUMNS = ("pk", "state", "step_due_at", "offboard_date", "partner_id", "partner_name")
_PARTNER_ID = _CASE_COLUMNS.index("partner_id")


@dataclass(frozen=True, slots=True)
class ConsoleCase:
    """A case as the console lists it (waiting on a money step, or at step 9)."""

    pk: int
    partner_id: int
    partner: str
    step: str  # the state's label
    due: dt.datetime | None
    overdue: bool
    offboard_date: dt.date | None
    days_to_offboard: int | None
    # Waiting cases: the partner's open balance per currency (empty when nothing is open,
    # or when the user may not read money).
    balance: dict[str, Decimal] = field(default_factory=dict)
    # Cases at step 9: whether this user recorded payments on it (then another CAR user
    # verifies).
    you_paid: bool = False


@dataclass(frozen=True, slots=True)
class PendingOverride:
    """A guard override waiting for a second CAR user, with what this user may do about it."""

    pk: int
    partner: str
    case_id: int | None
    describe: str
    requested_by: str
    requested_at: dt.datetime
    reason: str
    can_decide: bool  # a CAR user who did not ask for it
    asked_by_you: bool  # a CAR user who asked for it: another decides


def pending_overrides(user, *, case=None) -> list[PendingOverride]:
    """The overrides awaiting approval (of one case, or all), oldest first."""
    car = access.holds_lane(user, Lane.CAR)
    return [
        PendingOverride(
            pk=override.pk,
            partner=str(override.partner),
            case_id=override.case_id,
            describe=override.describe(),
            requested_by=override.requested_by.get_full_name() or override.requested_by.username,
            requested_at=override.created_at,
            reason=override.reason,
            can_decide=access.can_decide_override(user, override),
            asked_by_you=car and override.requested_by_id == user.pk,
        )
        for override in awaiting_approval(case=case)
    ]


def _balances(partner_ids) -> dict[int, dict[str, Decimal]]:
    """Each partner's open balance per currency: outstanding payouts, open commissions and
    open orders, summed by the database in one query."""
    if not partner_ids:
        return {}
    sources = (
        (Payout.objects.filter(status__in=OUTSTANDING_STATUSES), F("amount") - F("paid_amount")),
        (Commission.objects.filter(status=CommissionStatus.OPEN), F("amount")),
        (Order.objects.filter(status=OrderStatus.OPEN), F("amount")),
    )
    first, *others = (
        queryset.filter(partner_id__in=partner_ids)
        .order_by()
        .values("partner_id", "currency")
        .annotate(total=Sum(expression))
        .values_list("partner_id", "currency", "total")
        for queryset, expression in sources
    )
    balances: dict[int, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for partner_id, currency, total in first.union(*others, all=True):
        # SQLite sums decimals as binary floats; PostgreSQL is exact. Round to the cent.
        balances[partner_id][currency] += Decimal(total).quantize(CENT)
    return {pid: dict(sorted(totals.items())) for pid, totals in balances.items()}


def _case(values, now, today, **extra) -> ConsoleCase:
    pk, state, due, offboard_date, partner_id, partner_name, *_ = values
    # Every money state is open, so overdue and days to the offboard date count as
    # Case.is_overdue and Case.days_to_offboard do.
    return ConsoleCase(
        pk=pk,
        partner_id=partner_id,
        partner=partner_name,
        step=STATE_LABELS.get(state, state),
        due=due,
        overdue=due is not None and due < now,
        offboard_date=offboard_date,
        days_to_offboard=(offboard_date - today).days if offboard_date else None,
        **extra,
    )


def car_console(user) -> dict:
    """The console's lists for `user`; balances, overrides (which name amounts) and late
    payments only if they read money."""
    show_money = access.can_read_money(user)
    visible = visibility.visible_cases(user)
    counts = dict(
        visible.filter(state__in=MONEY_STATES)
        .order_by()
        .values("state")
        .annotate(n=Count("*"))
        .values_list("state", "n")
    )
    cases = visible.annotate(partner_name=F("partner__display_name")).order_by("step_due_at", "pk")
    waiting = list(
        cases.filter(state__in=WAITING_STATES).values_list(*_CASE_COLUMNS)[:CONSOLE_LIST_SIZE]
    )
    verifying = (
        cases.filter(state=VERIFY_STATE)
        .annotate(you_paid=Exists(Payment.objects.filter(case=OuterRef("pk"), recorded_by=user)))
        .values_list(*_CASE_COLUMNS, "you_paid")
    )
    now, today = timezone.now(), timezone.localdate()
    balances = _balances([values[_PARTNER_ID] for values in waiting]) if show_money else {}
    rows = [
        _case(values, now, today, balance=balances.get(values[_PARTNER_ID], {}))
        for values in waiting
    ]
    queue = [
        _case(values, now, today, you_paid=values[-1]) for values in verifying[:CONSOLE_LIST_SIZE]
    ]
    exceptions = payments_after_offboard_rows(CONSOLE_LIST_SIZE + 1) if show_money else []
    return {
        "show_money": show_money,
        "rows": rows,
        "rows_total": sum(counts.get(state, 0) for state in WAITING_STATES),
        "waiting_by_state": [
            (STATE_LABELS[state], counts[state]) for state in WAITING_STATES if counts.get(state)
        ],
        "verification_queue": queue,
        "verification_total": counts.get(VERIFY_STATE, 0),
        "pending_overrides": pending_overrides(user) if show_money else [],
        "exceptions": exceptions[:CONSOLE_LIST_SIZE],
        "more_exceptions": len(exceptions) > CONSOLE_LIST_SIZE,
        "car_lane": Lane.CAR.value,
        "verify_state": VERIFY_STATE,
    }
