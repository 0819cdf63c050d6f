"""The case page (templates/offboarding/case_detail.html), part by part: the facts, the
swimlane, the current step and its form, the money panel and the history.

Each part is read here for one user, and the context says what they may see and do
(`step_form` or `waiting_reason`, `money.withheld_reason`, `money.form_choices`): the
templates only draw it. Step 8's money forms are drawn one at a time, the one the user
chose; `offboarding.money.views.money_form` sends it alone to htmx.
"""

from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property

from django import forms
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone

from payouts.selectors import open_balance

from . import access, selectors
from .forms import STEP_FORMS, PortalCorrectionForm, WithdrawForm
from .money.console import pending_overrides
from .money.forms import MONEY_FORMS, MoneyFormKind
from .process import OWNER_LANES, CaseState, Lane

# The newest few; the final statement lists every payment.
PAYMENTS_SHOWN = 20

STATE_BADGES = {CaseState.DONE: "text-bg-success", CaseState.WITHDRAWN: "text-bg-secondary"}


@dataclass(frozen=True, slots=True)
class BalanceLine:
    """A row of the case page's open balance: a payout, commission or order, ready to show."""

    reference: str
    detail: str | None  # the payout's description or the commission's period; None: none
    kind: str
    status: str
    paid: Decimal | None  # what is already paid on a payout, when anything is
    amount: Decimal  # what is still open
    currency: str


def balance_lines(balance) -> list[BalanceLine]:
    return [
        *(
            BalanceLine(
                p.reference,
                p.description,
                "Payout",
                p.get_status_display(),
                p.paid_amount or None,
                p.remaining,
                p.currency,
            )
            for p in balance.payouts
        ),
        *(
            BalanceLine(
                c.reference,
                f"{c.period_start:%Y-%m-%d}–{c.period_end:%Y-%m-%d}",
                "Commission",
                c.get_status_display(),
                None,
                c.amount,
                c.currency,
            )
            for c in balance.commissions
        ),
        *(
            BalanceLine(
                o.reference,
                None,
                "Open order",
                o.get_status_display(),
                None,
                o.amount,
                o.currency,
            )
            for o in balance.orders
        ),
    ]


# ---- step 8's money forms ----


def may_change_money(user, case) -> bool:
    """The money forms are for the step's performer (CAR) while the case is at the step
    that changes the ledger (step 8)."""
    step = case.current_step
    return step is not None and step.ledger and access.can_perform_step(user, case, step)


@dataclass(frozen=True, slots=True)
class MoneyFormChoice:
    """A money form the user may open: its button on the case page."""

    kind: MoneyFormKind
    url: str  # the form alone for htmx; without JavaScript, the case page showing it


@dataclass(frozen=True, slots=True)
class MoneyFormShown:
    """The money form drawn (offboarding/_money_form.html): new, or bound with its errors."""

    kind: MoneyFormKind
    form: forms.Form
    action: str  # the URL it posts to


def money_form_url(case, kind: MoneyFormKind) -> str:
    return reverse("money_form", args=[case.pk, kind.name])


def money_form_shown(case, kind: MoneyFormKind, *, form=None, balance=None) -> MoneyFormShown:
    """`kind`'s form for `case`: `form` if given (bound, with its errors), else a new one.

    A new form offers the balance's payouts and orders when the page has read them (no
    query); without `balance` it reads them itself."""
    if form is None:
        lines = {} if balance is None else {"payouts": balance.payouts, "orders": balance.orders}
        # Each money form has ids of its own: none repeats an id of the step's form.
        form = kind.form_class(case=case, auto_id=f"id_{kind.context_name}_%s", **lines)
    return MoneyFormShown(kind, form, reverse(kind.action, args=[case.pk]))


def _bound_money_form(given):
    for kind in MONEY_FORMS.values():
        if given.get(kind.context_name) is not None:
            return kind, given[kind.context_name]
    return None, None


# ---- the page ----


@dataclass(slots=True)
class MoneyPanel:
    """The money panel: the open balance, the payments, the overrides, and step 8's forms.

    With `withheld_reason` set, the money belongs on the page but the user may not read it:
    the panel says so and shows nothing else."""

    withheld_reason: str = ""
    lines: list = field(default_factory=list)  # BalanceLine
    totals: dict = field(default_factory=dict)  # currency: open amount
    nothing_open: bool = False
    payments: list = field(default_factory=list)  # selectors.PaymentRow, newest first
    payments_total: int = 0
    more_payments: bool = False  # the case has more payments than `payments` shows
    statement_url: str = ""
    form_choices: list = field(default_factory=list)  # MoneyFormChoice: what CAR may open
    form: MoneyFormShown | None = None  # the one money form drawn
    # Decision D's overrides waiting on this case (console.PendingOverride), for CAR.
    pending_overrides: list = field(default_factory=list)


def _money_panel(user, case, balance, payments, *, chosen, given) -> MoneyPanel:
    bound_kind, bound_form = _bound_money_form(given)
    choices = []
    if may_change_money(user, case):
        choices = [
            MoneyFormChoice(kind, money_form_url(case, kind))
            for kind in MONEY_FORMS.values()
            if kind.offered(balance)
        ]
    shown = None
    if bound_kind is not None:
        shown = money_form_shown(case, bound_kind, form=bound_form)
    elif chosen is not None and any(choice.kind == chosen for choice in choices):
        shown = money_form_shown(case, chosen, balance=balance)
    return MoneyPanel(
        lines=balance_lines(balance),
        totals=balance.totals,
        nothing_open=balance.is_empty,
        payments=payments.shown,
        payments_total=payments.total,
        more_payments=payments.total > len(payments.shown),
        statement_url=reverse("final_statement", args=[case.pk]),
        form_choices=choices,
        form=shown,
        # A case read by selectors.case_detail knows whether any override waits: most do not.
        pending_overrides=pending_overrides(user, case=case)
        if access.holds_lane(user, Lane.CAR) and getattr(case, "has_pending_override", True)
        else [],
    )


def _step_part(user, case, step, payments, step_form) -> dict:
    """The current step: its form for who may perform it, else why the form is not there."""
    if step is None:
        return {"step_form": None, "waiting_reason": "", "waiting_for": ""}
    payers = None
    if step.four_eyes and payments is not None:
        # Decision B's four eyes: only whether this user recorded a payment matters
        # (without the payments read, can_perform_step reads who paid, if it must).
        payers = {user.pk} if payments.by_user else set()
    can_act = access.can_perform_step(user, case, step, payers)
    waiting_reason = ""
    if step.four_eyes and not can_act and access.can_perform(user, case, step.lane):
        waiting_reason = (
            f"You recorded payments on this case; another {step.lane.label} member must verify."
        )
    if can_act and step_form is None:
        step_form = STEP_FORMS[step.number](case=case)
    owner = " (the partner's CAM)" if step.lane in OWNER_LANES else ""
    return {
        "step_form": step_form if can_act else None,
        # Read here, not by the template: what the form says above its fields.
        "step_lead": step_form.lead() if can_act else "",
        "waiting_reason": waiting_reason,
        "waiting_for": f"Waiting for {step.lane.label}{owner}.",
    }


# A case's events never change once written, so its drawn history could be kept for ever;
# a day bounds what a long-gone case keeps in the cache.
CASE_EVENTS_CACHE_SECONDS = 24 * 60 * 60


class CaseEvents:
    """The case's history and its swimlane, read on first use: the page draws them from its
    cache while the history is unchanged, and then they are not read at all."""

    def __init__(self, case, *, money: bool, everything: bool):
        self.case = case
        self.money = money
        self.everything = everything

    @cached_property
    def history(self):
        return selectors.case_history(self.case, money=self.money, everything=self.everything)

    @cached_property
    def _swimlane(self):
        return selectors.swimlane(self.case, self.history.step_events)

    @property
    def events(self):
        return self.history.events

    @property
    def complete(self):
        return self.history.complete

    @property
    def lanes(self):
        return self._swimlane[0]

    @property
    def cells(self):
        return self._swimlane[1]


def case_page_context(request, case, *, money_form: MoneyFormKind | None = None, **given):
    """Everything case_detail.html draws for `request.user`.

    `money_form` is the money form the user chose to open; a bound form in `given` (under
    its context name: `step_form`, `withdraw_form`, `portal_correction_form` or a
    MoneyFormKind's `context_name`) is drawn in place of a new one, with its errors."""
    user = request.user
    # One rule (issue 15): who may not read the final statement sees no balance, payment or
    # money in the history here either; for them the money is not even read.
    reads_money = access.can_read_money(user)
    everything = request.GET.get("history") == "all"
    case_events = CaseEvents(case, money=reads_money, everything=everything)
    step = case.current_step
    shows_money = (step is not None and step.money_panel) or bool(case.money_on_table)
    money_shown = shows_money and reads_money
    payments = selectors.case_payments(case, user, PAYMENTS_SHOWN) if money_shown else None
    balance = open_balance(case.partner) if money_shown else None
    money = None
    if money_shown:
        money = _money_panel(user, case, balance, payments, chosen=money_form, given=given)
    elif shows_money:
        money = MoneyPanel(withheld_reason=selectors.MONEY_WITHHELD)
    drawn = money.form if money is not None else None
    return {
        "case": case,
        "state_badge": STATE_BADGES.get(case.state, "text-bg-primary"),
        "is_done": case.state == CaseState.DONE,
        "step": step,
        # The swimlane and the history are cached fragments (case_detail.html): keyed on the
        # length of the append-only history, read from the database only when missed.
        "case_events": case_events,
        "history_version": selectors.history_length(case),
        "history_everything": everything,
        "reads_money": reads_money,
        "case_events_cache_seconds": CASE_EVENTS_CACHE_SECONDS,
        "step_due": (
            timezone.localtime(case.step_due_at).strftime("%m-%d %H:%M") if case.step_due_at else ""
        ),
        "money_withheld_reason": selectors.MONEY_WITHHELD,
        **_step_part(user, case, step, payments, given.get("step_form")),
        "withdraw_form": (given.get("withdraw_form") or WithdrawForm(case=case))
        if access.can_withdraw(user, case)
        else None,
        "portal_correction_form": (
            given.get("portal_correction_form") or PortalCorrectionForm(case=case)
        )
        if access.can_correct_portal(user, case)
        else None,
        "money": money,
        "balance": balance,
        "payments": payments.shown if payments else [],
        "payments_total": payments.total if payments else 0,
        # The drawn money form under its own name too, as its view's tests read it.
        **({drawn.kind.context_name: drawn.form} if drawn is not None else {}),
    }


def render_case_page(request, case, status=200, **forms):
    """The case page, with a bound form (given by its context name) that shows what was
    wrong and keeps the input, or with the money form chosen (`money_form`)."""
    return render(
        request,
        "offboarding/case_detail.html",
        case_page_context(request, case, **forms),
        status=status,
    )
