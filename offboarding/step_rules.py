"""Each step's rules on the data a person enters, in one place.

The step's form asks here to show a problem on its field; the services ask the same
functions to refuse the data whoever calls (view, admin, task, command, import). A step
names its rule in `process.Step.rule`; step 8's ledger writes use `payment_date_problem` and
`order_resolution_problem`.

A rule takes the step's data (what the form's fields deliver, without the note and the
evidence), the case (None before it exists: step 1) and the evidence files, and returns
the problems, each for a field. A rule reads only the keys present: the form hands over
only the fields that passed their own checks.
"""

import datetime as dt
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from django.utils import timezone

from partners.models import LicenceStatus
from payouts.models import OrderStatus

from .models import Reason
from .process import NOTICE_PERIOD_DAYS, Step

# Issue 15: a date far from any real one (year 1, year 9999) is a slip or a hand-made
# request. Accepted, it would reach the business-day arithmetic (which overflows near the
# end of year 9999), the offboard date and the payment guard. Every date a person enters,
# through a form or straight to a service, must fall in this window.
EARLIEST_DATE = dt.date(2000, 1, 1)
LATEST_DATE = dt.date(2100, 12, 31)


@dataclass(frozen=True)
class Problem:
    field: str | None  # the form field it belongs to; None: the data as a whole
    message: str


def date_window_problem(value: dt.date | None, label: str = "The date") -> str:
    """Why `value` is outside the window of dates PartnerOps accepts, or "" if it is not."""
    if value is None or EARLIEST_DATE <= value <= LATEST_DATE:
        return ""
    return (
        f"{label} {value.isoformat()} is outside the dates PartnerOps accepts "
        f"({EARLIEST_DATE.isoformat()} to {LATEST_DATE.isoformat()}): check the year."
    )


def future_date_problem(value: dt.date | None, label: str) -> str:
    if value and value > timezone.localdate():
        return f"{label} cannot be in the future."
    return ""


def check(step: Step, data: Mapping, *, case, evidence: Sequence = ()) -> list[Problem]:
    """Every problem with `data` for `step`: first each date's window (the step's rule may
    add days to a date), then the step's own rule."""
    problems = [
        Problem(key, problem)
        for key, value in data.items()
        if isinstance(value, dt.date)
        and (problem := date_window_problem(value, key.replace("_", " ").capitalize()))
    ]
    if problems or not step.rule:
        return problems
    rule = getattr(sys.modules[__name__], step.rule)
    return rule(data, case=case, evidence=evidence)


def _future(data: Mapping, key: str, label: str) -> list[Problem]:
    problem = future_date_problem(data.get(key), label)
    return [Problem(key, problem)] if problem else []


# ---- the steps' rules, named by process.Step.rule ----


def request_to_leave(data: Mapping, *, case, evidence) -> list[Problem]:
    """Step 1: the request is not dated in the future; 'Other' says what the reason is."""
    problems = _future(data, "request_received_on", "The request date")
    if data.get("reason") == Reason.OTHER and not data.get("reason_detail", "").strip():
        problems.append(Problem("reason_detail", "Say what the reason is when you choose 'Other'."))
    return problems


def company_removal(data: Mapping, *, case, evidence) -> list[Problem]:
    """Step 2: legal action comes with its documents; the notice is dated between the
    request and today."""
    problems = _future(data, "notice_date", "The notice date")
    notice = data.get("notice_date")
    if notice and case is not None and notice < case.request_received_on:
        problems.append(Problem("notice_date", "The notice cannot predate the request (step 1)."))
    if data.get("legal_action") and not evidence:
        problems.append(
            Problem("evidence", "Legal action needs its supporting documents: upload at least one.")
        )
    return problems


def resignation(data: Mapping, *, case, evidence) -> list[Problem]:
    """Step 3: a resignation gives at least NOTICE_PERIOD_DAYS days' notice."""
    problems = _future(data, "notice_date", "The notice date")
    notice, exit_date = data.get("notice_date"), data.get("requested_exit_date")
    if notice and exit_date:
        earliest = notice + dt.timedelta(days=NOTICE_PERIOD_DAYS)
        if exit_date < earliest:
            problems.append(
                Problem(
                    "requested_exit_date",
                    f"A resignation needs at least {NOTICE_PERIOD_DAYS} days' notice: with "
                    f"notice on {notice:%Y-%m-%d} the exit date must be {earliest:%Y-%m-%d} "
                    f"or later ({(exit_date - notice).days} days given).",
                )
            )
    return problems


def membership_licence(data: Mapping, *, case, evidence) -> list[Problem]:
    """Step 6: the licence suspended is this partner's active $0 membership licence."""
    licence = data.get("licence")
    if licence is None:
        return [Problem("licence", "Choose the $0 membership licence to suspend.")]
    if not (
        licence.partner_id == case.partner_id
        and licence.is_membership
        and licence.status == LicenceStatus.ACTIVE
    ):
        return [Problem("licence", "Step 6 suspends this partner's active $0 membership licence.")]
    return []


def money_on_table(data: Mapping, *, case, evidence) -> list[Problem]:
    """Step 7: 'nothing is owed' only when nothing is (Decision A)."""
    if "money_on_table" in data and not data["money_on_table"] and case.money_on_the_table():
        return [
            Problem(
                "money_on_table",
                "There is money on the table: this partner has open commissions, open orders "
                "or outstanding payouts, so 'nothing is owed' is not possible.",
            )
        ]
    return []


def portal_follows_record(data: Mapping, *, case, evidence) -> list[Problem]:
    """Step 10 (Decision C): the CAM confirms the portal the partner record names."""
    if data.get("portal") != case.partner.portal:
        return [
            Problem(
                "portal",
                f"The partner record says {case.partner.get_portal_display()}: step 10 follows "
                "the record. Review it and confirm again; if the record is wrong, Sales Ops "
                "corrects it on this case first.",
            )
        ]
    return []


# ---- step 8: the ledger's writes ----


def payment_date_problem(paid_on: dt.date, payout=None) -> str:
    """A payment is dated in the window, not in the future, and (given its payout) not
    before the payout was earned."""
    label = "The payment date"
    problem = date_window_problem(paid_on, label) or future_date_problem(paid_on, label)
    if not problem and payout is not None and paid_on < payout.earned_on:
        problem = (
            f"{payout.reference} was earned on {payout.earned_on:%Y-%m-%d}: a payment dated "
            f"{paid_on:%Y-%m-%d}, before it was earned, is not possible."
        )
    return problem


def order_resolution_problem(outcome: str, note: str) -> str:
    """An order is resolved as closed or cancelled, and a cancelled one says why."""
    if outcome not in (OrderStatus.CLOSED, OrderStatus.CANCELLED):
        return "An order is resolved as closed or cancelled."
    if outcome == OrderStatus.CANCELLED and not (note or "").strip():
        return "Say why the order is cancelled."
    return ""
