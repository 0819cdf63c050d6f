"""The CAR console: the cases waiting on money steps with each partner's open balance, the
verification queue, and the payments that should not exist. Each list shows the first
CONSOLE_LIST_SIZE rows (the soonest due, the newest payments) with the total and a link to
the full list, so the page costs the same however many cases are open. A fixed number of
queries, reading only the columns shown."""

from collections import defaultdict
from decimal import Decimal

from django.db.models import Count, Exists, F, OuterRef, Sum
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import mark_safe

from core.display import local_minute, pk_url
from offboarding import visibility
from offboarding.process import CaseState, Lane, state_for
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

VERIFY_STATE = state_for(9)
WAITING_STATES = [state_for(n) for n in (7, 8, 11)]
MONEY_STATES = [*WAITING_STATES, VERIFY_STATE]
CONSOLE_LIST_SIZE = 25
STATE_LABELS = dict(CaseState.choices)

_CASE_COLUMNS = ("pk", "state", "step_due_at", "offboard_date", "partner_id", "partner_name")


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


def _row(values, now, today, case_url) -> dict:
    """A case as the console shows it, each cell formatted once here."""
    pk, state, due, offboard_date, partner_id, partner_name, *_ = values
    # Every money state is open, so overdue and days to the offboard date count as
    # Case.is_overdue and Case.days_to_offboard do.
    offboard = "—"
    if offboard_date:
        offboard = f"{offboard_date.isoformat()} ({(offboard_date - today).days} days)"
    return {
        "pk": pk,
        "url": case_url(pk),
        "partner_id": partner_id,
        "partner": partner_name,
        "step": STATE_LABELS.get(state, state),
        "due": local_minute(due) or "—",
        "overdue": due is not None and due < now,
        "offboard": offboard,
    }


def _balance_html(balance: dict) -> str:
    if not balance:
        return "—"
    return mark_safe(  # noqa: S308 - amounts are Decimals, currencies are escaped
        "<br>".join(f"{total} {escape(currency)}" for currency, total in balance.items())
    )


def car_console(user) -> dict:
    visible = visibility.visible_cases(user)
    counts = dict(
        visible.filter(state__in=MONEY_STATES)
        .order_by()
        .values("state")
        .annotate(n=Count("*"))
        .values_list("state", "n")
    )
    cases = visible.annotate(partner_name=F("partner__display_name")).order_by("step_due_at", "pk")
    waiting = cases.filter(state__in=WAITING_STATES).values_list(*_CASE_COLUMNS)
    verifying = (
        cases.filter(state=VERIFY_STATE)
        .annotate(you_paid=Exists(Payment.objects.filter(case=OuterRef("pk"), recorded_by=user)))
        .values_list(*_CASE_COLUMNS, "you_paid")
    )
    now, today = timezone.now(), timezone.localdate()
    case_url, statement_url = pk_url("case_detail"), pk_url("final_statement")
    rows = [_row(values, now, today, case_url) for values in waiting[:CONSOLE_LIST_SIZE]]
    balances = _balances([row["partner_id"] for row in rows])
    for row in rows:
        row["balance"] = balances.get(row["partner_id"], {})
        row["balance_html"] = _balance_html(row["balance"])
    queue = []
    for values in verifying[:CONSOLE_LIST_SIZE]:
        row = _row(values, now, today, case_url)
        row["statement_url"] = statement_url(row["pk"])
        row["you_paid"] = values[-1]
        queue.append(row)
    exceptions = payments_after_offboard_rows(CONSOLE_LIST_SIZE + 1)
    return {
        "rows": rows,
        "rows_total": sum(counts.get(state, 0) for state in WAITING_STATES),
        "waiting_by_state": [
            (STATE_LABELS[state], counts[state]) for state in WAITING_STATES if counts.get(state)
        ],
        "verification_queue": queue,
        "verification_total": counts.get(VERIFY_STATE, 0),
        "exceptions": exceptions[:CONSOLE_LIST_SIZE],
        "more_exceptions": len(exceptions) > CONSOLE_LIST_SIZE,
        "car_lane": Lane.CAR.value,
        "verify_state": VERIFY_STATE,
    }
