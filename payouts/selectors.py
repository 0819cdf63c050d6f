"""Reads of the ledger for the case page, step 7, the final statement and the CAR console."""

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Value

from .models import (
    OUTSTANDING_STATUSES,
    Commission,
    CommissionStatus,
    Order,
    OrderStatus,
    Payment,
    PaymentMethod,
    Payout,
    PayoutStatus,
)

ZERO = Decimal("0.00")


def outstanding_payouts(partner):
    return Payout.objects.filter(partner=partner, status__in=OUTSTANDING_STATUSES).order_by(
        "earned_on", "reference"
    )


def partner_payouts(partner):
    """Every payout of the partner, settled or not (a replayed payment names a paid one)."""
    return Payout.objects.filter(partner=partner).order_by("earned_on", "reference")


def open_commissions(partner):
    return Commission.objects.filter(partner=partner, status=CommissionStatus.OPEN).order_by(
        "earned_on", "reference"
    )


def open_orders(partner):
    return Order.objects.filter(partner=partner, status=OrderStatus.OPEN).order_by(
        "ordered_on", "reference"
    )


def money_on_the_table(partner) -> bool:
    """Step 7's question: any open commission, open order or outstanding payout?"""
    return (
        outstanding_payouts(partner).exists()
        or open_commissions(partner).exists()
        or open_orders(partner).exists()
    )


@dataclass
class Balance:
    payouts: list
    commissions: list
    orders: list
    totals: dict[str, Decimal]

    @property
    def is_empty(self) -> bool:
        return not (self.payouts or self.commissions or self.orders)

    def as_event_data(self) -> dict:
        return {
            "totals": {currency: str(total) for currency, total in self.totals.items()},
            "payouts": [
                {"reference": p.reference, "remaining": str(p.remaining), "currency": p.currency}
                for p in self.payouts
            ],
            "commissions": [
                {"reference": c.reference, "amount": str(c.amount), "currency": c.currency}
                for c in self.commissions
            ],
            "orders": [
                {"reference": o.reference, "amount": str(o.amount), "currency": o.currency}
                for o in self.orders
            ],
        }


def open_balance(partner) -> Balance:
    """Everything still owed or still able to earn, with totals per currency."""
    payouts = list(outstanding_payouts(partner))
    commissions = list(open_commissions(partner))
    orders = list(open_orders(partner))
    totals: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for payout in payouts:
        totals[payout.currency] += payout.remaining
    for line in (*commissions, *orders):
        totals[line.currency] += line.amount
    return Balance(payouts, commissions, orders, dict(sorted(totals.items())))


@dataclass(slots=True)
class StatementPayout:
    """The columns of a payout that the statement shows: a plain row, not a model instance,
    because a statement can run to thousands of lines."""

    pk: int
    reference: str
    description: str
    currency: str
    status: str
    amount: Decimal
    paid_amount: Decimal
    void_reason: str

    @property
    def status_label(self) -> str:
        return _label(PayoutStatus, self.status)


@dataclass(slots=True)
class StatementPayment:
    pk: int
    reference: str
    amount: Decimal
    paid_on: dt.date
    method: str
    recorded_by_username: str

    @property
    def method_label(self) -> str:
        return _label(PaymentMethod, self.method)


def _label(choices, value: str) -> str:
    """The label of a stored choice; a value no longer among the choices shows as stored."""
    try:
        return str(choices(value).label)
    except ValueError:
        return value


@dataclass(slots=True)
class StatementLine:
    payout: StatementPayout
    owed_at_notice: Decimal
    payments: list  # StatementPayment, oldest first
    paid_since_notice: Decimal
    remaining: Decimal


@dataclass(slots=True)
class StatementOpenLine:
    """An open commission or order, listed under the statement as "still open"."""

    pk: int
    reference: str
    amount: Decimal
    currency: str


@dataclass
class Statement:
    case: object
    notice_date: dt.date | None
    lines: list
    open_commissions: list
    open_orders: list
    totals: dict

    def as_event_data(self) -> dict:
        return {
            "notice_date": self.notice_date.isoformat() if self.notice_date else None,
            "lines": [
                {
                    "payout": line.payout.reference,
                    "currency": line.payout.currency,
                    "status": line.payout.status,
                    "owed_at_notice": str(line.owed_at_notice),
                    "paid": [
                        {
                            "reference": p.reference,
                            "amount": str(p.amount),
                            "paid_on": p.paid_on.isoformat(),
                            "by": p.recorded_by_username,
                        }
                        for p in line.payments
                    ],
                    "remaining": str(line.remaining),
                    "void_reason": line.payout.void_reason,
                }
                for line in self.lines
            ],
            "totals": {
                currency: {key: str(value) for key, value in sums.items()}
                for currency, sums in self.totals.items()
            },
        }


_STATEMENT_COLUMNS = (
    # the payout
    "pk",
    "reference",
    "description",
    "currency",
    "status",
    "amount",
    "paid_amount",
    "void_reason",
    # one of its payments (all None for a payout never paid)
    "payments__pk",
    "payments__amount",
    "payments__paid_on",
    "payments__method",
    "payments__reference",
    "payments__recorded_by__username",
)


def final_statement(case) -> Statement:
    """What was owed at notice, what has been paid since (line by line), what remains.

    A payout belongs on the statement if it was not fully paid before the notice date.
    One query reads every payout of the partner joined to its payments (a row per payment,
    or one row for a payout never paid), as plain tuples; a second reads what is still open.
    """
    notice = case.notice_date or case.opened_at.date()
    rows = (
        Payout.objects.filter(partner_id=case.partner_id)
        .order_by("earned_on", "reference", "payments__paid_on", "payments__pk")
        .values_list(*_STATEMENT_COLUMNS)
    )
    lines = []
    totals: dict[str, dict[str, Decimal]] = {}
    void = PayoutStatus.VOID.value

    def add_line(payout, owed, payments):
        if owed <= 0 and not payments:
            return
        paid = sum((p.amount for p in payments), ZERO)
        remaining = ZERO if payout.status == void else payout.amount - payout.paid_amount
        lines.append(StatementLine(payout, owed, payments, paid, remaining))
        sums = totals.get(payout.currency)
        if sums is None:
            sums = totals[payout.currency] = {
                "owed_at_notice": ZERO,
                "paid": ZERO,
                "remaining": ZERO,
            }
        sums["owed_at_notice"] += owed
        sums["paid"] += paid
        sums["remaining"] += remaining

    payout = None
    owed = ZERO
    payments: list = []
    for row in rows:
        pk, *_payout, payment_pk, amount, paid_on, method, reference, username = row
        if payout is None or payout.pk != pk:
            if payout is not None:
                add_line(payout, owed, payments)
            payout = StatementPayout(pk, *_payout)
            owed = payout.amount
            payments = []
        if payment_pk is None:
            continue  # a payout never paid
        if paid_on < notice:
            owed -= amount  # paid before the notice: it was not owed at notice
        else:
            payments.append(
                StatementPayment(payment_pk, reference, amount, paid_on, method, username)
            )
    if payout is not None:
        add_line(payout, owed, payments)
    commissions, orders = _still_open(case.partner_id)
    return Statement(
        case, case.notice_date, lines, commissions, orders, dict(sorted(totals.items()))
    )


def _still_open(partner_id) -> tuple[list, list]:
    """The partner's open commissions and open orders (oldest first), in one query."""
    commissions = (
        Commission.objects.filter(partner_id=partner_id, status=CommissionStatus.OPEN)
        .order_by()
        .annotate(kind=Value("commission"))
        .values_list("kind", "earned_on", "reference", "pk", "amount", "currency")
    )
    orders = (
        Order.objects.filter(partner_id=partner_id, status=OrderStatus.OPEN)
        .order_by()
        .annotate(kind=Value("order"))
        .values_list("kind", "ordered_on", "reference", "pk", "amount", "currency")
    )
    found: dict[str, list] = {"commission": [], "order": []}
    for kind, _on, reference, pk, amount, currency in sorted(
        commissions.union(orders, all=True), key=lambda row: row[:3]
    ):
        found[kind].append(StatementOpenLine(pk, reference, amount, currency))
    return found["commission"], found["order"]


def payments_after_offboard_date():
    """The system's proof: every payment dated after its partner's offboard date."""
    return (
        Payment.objects.filter(after_offboard_date=True)
        .select_related("payout", "payout__partner", "recorded_by", "override")
        .order_by("-paid_on", "-pk")
    )


@dataclass(frozen=True, slots=True)
class LatePayment:
    """A payment dated after its partner's offboard date, as the report shows it."""

    pk: int
    partner: str
    offboard_date: dt.date | None
    paid_on: dt.date
    amount: Decimal
    currency: str
    reference: str
    recorded_by: str
    override_reason: str | None


def payments_after_offboard_rows(limit: int) -> list[LatePayment]:
    """The newest `limit` payments of payments_after_offboard_date(), as the report shows
    them: only the columns needed, as plain rows (not model instances)."""
    rows = (
        Payment.objects.filter(after_offboard_date=True)
        .order_by("-paid_on", "-pk")
        .values_list(
            "pk",
            "payout__partner__display_name",
            "payout__partner__offboard_date",
            "paid_on",
            "amount",
            "currency",
            "reference",
            "recorded_by__username",
            "override__reason",
        )[:limit]
    )
    return [LatePayment(*row) for row in rows]
