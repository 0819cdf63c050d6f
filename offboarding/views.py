"""Case pages. Thin: load through the access helpers, validate a form, call a service."""

import logging
from dataclasses import dataclass
from decimal import Decimal

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import FileResponse, Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from accounts.roles import Role, has_role
from core.pagination import page_of_ids
from core.params import row_id
from partners.access import get_partner_for
from payouts.selectors import open_balance

from . import access, case_record, selectors, services, visibility
from .case_chain import recorded_digest
from .case_page_html import balance_html, history_html, payments_html, swimlane_html
from .case_table_html import case_rows_html, options_html
from .forms import STEP_FORMS, PortalCorrectionForm, RequestForm, WithdrawForm
from .models import EvidenceFile
from .process import STEP_BY_NUMBER, Lane

PAGE_SIZE = 25
logger = logging.getLogger(__name__)


def _case_table(cases, page):
    """The rows of `page` (of `cases`' ids), for offboarding/_case_table.html.

    The page is chosen by id, from the cases alone (an index holds what the filters and the
    order read); the partner and CAM names are then joined for those 25 rows only."""
    rows = selectors.case_rows(page.object_list, cases.query.order_by)
    return {"page": page, "rows": rows, "rows_html": case_rows_html(rows)}


@require_GET
def my_work(request):
    cases = selectors.my_work(request.user)
    # Counted by the page's own query: a CAM's cases are found through the partners they
    # manage, a join that a separate COUNT would run a second time (EXPLAIN on the bench
    # data: 1.1 ms in place of 1.8). Most of the case list's filters are read from indexes
    # on the case itself, where Django's COUNT costs less than counting every row with the page.
    page = page_of_ids(cases, request.GET.get("page"), PAGE_SIZE)
    return render(request, "offboarding/my_work.html", _case_table(cases, page))


@require_GET
def case_list(request):
    filters = {
        "state": request.GET.get("state", "open"),
        "lane": request.GET.get("lane", ""),
        "cam_id": request.GET.get("cam", "") or None,
        "overdue": request.GET.get("overdue") == "1",
        "search": request.GET.get("q", "").strip(),
    }
    if filters["lane"] not in {lane.value for lane in Lane}:
        filters["lane"] = ""
    filters["cam_id"] = row_id(filters["cam_id"])
    cases = selectors.case_list(request.user, **filters)
    ids = cases.values_list("pk", flat=True)
    table = _case_table(cases, Paginator(ids, PAGE_SIZE).get_page(request.GET.get("page")))
    if request.htmx:
        return render(request, "offboarding/_case_table.html", table)
    options = {
        f"{name}_html": options_html(choices)
        for name, choices in selectors.case_filter_options(
            request.user, state=filters["state"], lane=filters["lane"], cam_id=filters["cam_id"]
        ).items()
    }
    return render(request, "offboarding/case_list.html", {**table, **options, "filters": filters})


MONEY_STEPS = (7, 8, 9)
PAYMENTS_SHOWN = 20


def _money_forms(user, case, given, balance):
    """Step 8's forms for CAR; a bound form passed in (with its errors) takes its place."""
    from offboarding.money.forms import PayInFullForm, PaymentForm, ResolveOrderForm, VoidPayoutForm

    if balance is None or case.state != "step_8" or not access.can_perform(user, case, Lane.CAR):
        return {}
    forms = {
        "payment_form": (PaymentForm, {"payouts": balance.payouts}),
        "pay_in_full_form": (PayInFullForm, {"payouts": balance.payouts}),
        "void_form": (VoidPayoutForm, {"payouts": balance.payouts}),
        "order_form": (ResolveOrderForm, {}),
    }
    shown = {
        # Several forms share a page: each gets its own ids, so every label finds its field.
        name: given.get(name) or form_class(case=case, auto_id=f"id_{name}_%s", **kwargs)
        for name, (form_class, kwargs) in forms.items()
    }
    if "order_form" not in given:
        # The open orders are on the page already (the balance, same query and order): offer
        # them as they are instead of reading them again. A submitted form is validated
        # against the database by its own view.
        order = shown["order_form"].fields["order"]
        order.choices = [
            ("", order.empty_label),
            *((o.pk, order.label_from_instance(o)) for o in balance.orders),
        ]
    return shown


def _pending_overrides(user, case, shows_money):
    """Decision D's overrides waiting on this case, for CAR, who decides on them."""
    from offboarding.money.overrides import awaiting_approval

    if not (shows_money and access.holds_lane(user, Lane.CAR)):
        return {}
    return {"pending_overrides": list(awaiting_approval(case=case)), "can_decide": True}


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


def _balance_lines(balance) -> list[BalanceLine]:
    from payouts.models import CommissionStatus, OrderStatus, PayoutStatus

    payout_status = dict(PayoutStatus.choices)
    commission_status = dict(CommissionStatus.choices)
    order_status = dict(OrderStatus.choices)
    return [
        *(
            BalanceLine(
                p.reference,
                p.description,
                "Payout",
                payout_status.get(p.status, p.status),
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
                commission_status.get(c.status, c.status),
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
                order_status.get(o.status, o.status),
                None,
                o.amount,
                o.currency,
            )
            for o in balance.orders
        ),
    ]


def _detail_context(request, case, **given):
    user = request.user
    # One rule (issue 15): who may not read the final statement sees no balance, payment or
    # money in the history here either; for them the money is not even read.
    reads_money = access.can_read_money(user)
    history = selectors.case_history(
        case, money=reads_money, everything=request.GET.get("history") == "all"
    )
    lanes, cells = selectors.swimlane(case, history.step_events)
    step = case.current_step
    step_form = given.get("step_form")
    shows_money = (step is not None and step.number in MONEY_STEPS) or bool(case.money_on_table)
    money_shown = shows_money and reads_money
    payments = selectors.case_payments(case, user, PAYMENTS_SHOWN) if money_shown else None
    can_act = False
    waiting_reason = ""
    if step is not None:
        if step.number == 9:
            # Decision B's four eyes: only whether this user recorded a payment matters
            # (without the payments read, can_verify_payouts reads who paid, if it must).
            payers = ({user.pk} if payments.by_user else set()) if payments is not None else None
            can_act = access.can_verify_payouts(user, case, payers)
            if access.can_perform(user, case, Lane.CAR) and not can_act:
                waiting_reason = (
                    "You recorded payments on this case; another CAR member must verify."
                )
        else:
            can_act = access.can_perform(user, case, step.lane)
        if can_act and step_form is None:
            step_form = STEP_FORMS[step.number](case=case)
    can_withdraw = access.can_withdraw(user, case)
    balance = open_balance(case.partner) if money_shown else None
    balance_lines = _balance_lines(balance) if balance else []
    step_due = (
        timezone.localtime(case.step_due_at).strftime("%m-%d %H:%M") if case.step_due_at else ""
    )
    return {
        "case": case,
        "step": step,
        "lanes": lanes,
        "cells": cells,
        "swimlane_html": swimlane_html(lanes, cells, step_due),
        "history": history.events,
        "history_html": history_html(history.events),
        "history_complete": history.complete,
        "step_form": step_form if can_act else None,
        "waiting_reason": waiting_reason,
        "withdraw_form": (given.get("withdraw_form") or WithdrawForm(case=case))
        if can_withdraw
        else None,
        "portal_correction_form": (
            given.get("portal_correction_form") or PortalCorrectionForm(case=case)
        )
        if access.can_correct_portal(user, case)
        else None,
        "money_withheld": shows_money and not reads_money,
        "money_withheld_reason": selectors.MONEY_WITHHELD,
        "can_read_money": reads_money,
        "balance": balance,
        "balance_html": balance_html(balance_lines, balance.totals) if balance else "",
        # The newest few; the final statement lists every payment.
        "payments": payments.shown if payments else [],
        "payments_html": payments_html(payments.shown) if payments else "",
        "payments_total": payments.total if payments else 0,
        **_money_forms(user, case, given, balance),
        **_pending_overrides(user, case, money_shown),
    }


@require_GET
def case_detail(request, pk):
    case = selectors.case_detail(request.user, pk)
    return render(request, "offboarding/case_detail.html", _detail_context(request, case))


def render_case_page(request, case, status=200, **forms):
    """The case page again, with a bound form that shows what was wrong and keeps the input."""
    return render(
        request,
        "offboarding/case_detail.html",
        _detail_context(request, case, **forms),
        status=status,
    )


@require_POST
def complete_step(request, pk, step_number):
    case = selectors.case_detail(request.user, pk)
    step = STEP_BY_NUMBER.get(step_number)
    if step is None:
        raise Http404("No such step.")
    form = STEP_FORMS[step_number](request.POST, request.FILES, case=case)
    if case.current_step != step:
        messages.warning(request, str(services.CaseMovedOn()))
        return redirect("case_detail", pk=case.pk)
    if not form.is_valid():
        return render_case_page(request, case, status=400, step_form=form)
    try:
        services.complete_step(
            actor=request.user,
            case_id=case.pk,
            step_number=step_number,
            expected_state=form.cleaned_data["expected_state"],
            data=form.step_data(),
            note=form.cleaned_data.get("note", ""),
            evidence=form.cleaned_data.get("evidence", []),
        )
    except services.CaseMovedOn as refusal:
        messages.warning(request, str(refusal))
        return redirect("case_detail", pk=case.pk)
    except services.ActionRefused as refusal:
        # Shown both as a page message (the form is hidden from who may not act) and on
        # the form, which keeps what the person entered.
        messages.error(request, str(refusal))
        form.add_error(None, str(refusal))
        return render_case_page(request, case, status=403, step_form=form)
    messages.success(request, f"Step {step_number} · {step.title} recorded.")
    return redirect("case_detail", pk=case.pk)


@require_POST
def withdraw(request, pk):
    case = selectors.case_detail(request.user, pk)
    form = WithdrawForm(request.POST, case=case)
    if not form.is_valid():
        return render_case_page(request, case, status=400, withdraw_form=form)
    try:
        services.withdraw_case(
            actor=request.user,
            case_id=case.pk,
            expected_state=form.cleaned_data["expected_state"],
            reason=form.cleaned_data["reason"],
        )
    except services.CaseMovedOn as refusal:
        messages.warning(request, str(refusal))
        return redirect("case_detail", pk=case.pk)
    except services.ActionRefused as refusal:
        messages.error(request, str(refusal))
        return redirect("case_detail", pk=case.pk)
    messages.success(request, "The case is withdrawn; the partner is active again.")
    return redirect("case_detail", pk=case.pk)


@require_POST
def correct_portal(request, pk):
    case = selectors.case_detail(request.user, pk)
    form = PortalCorrectionForm(request.POST, case=case)
    if not form.is_valid():
        return render_case_page(request, case, status=400, portal_correction_form=form)
    try:
        services.correct_partner_portal(
            actor=request.user,
            case_id=case.pk,
            expected_state=form.cleaned_data["expected_state"],
            portal=form.cleaned_data["portal"],
            reason=form.cleaned_data["reason"],
        )
    except services.CaseMovedOn as refusal:
        messages.warning(request, str(refusal))
        return redirect("case_detail", pk=case.pk)
    except services.ActionRefused as refusal:
        form.add_error(None, str(refusal))
        return render_case_page(request, case, status=400, portal_correction_form=form)
    messages.success(request, "The partner record's portal is corrected; the case follows it.")
    return redirect("case_detail", pk=case.pk)


@require_GET
def case_record_export(request, pk):
    """The case's record as one ZIP (offboarding.case_record): a download, nothing changes."""
    case = selectors.case_detail(request.user, pk)
    return FileResponse(
        case_record.case_record_zip(case, request.user),
        as_attachment=True,
        filename=case_record.case_filename(case),
        content_type="application/zip",
    )


@require_GET
def partner_records_export(request, partner_pk):
    """Every case of the partner that the user may see, a folder each, in one ZIP."""
    partner = get_partner_for(request.user, partner_pk)
    cases = list(
        visibility.visible_cases(request.user, partner.offboarding_cases.all())
        .select_related("partner", "partner__cam", "opened_by")
        .order_by("opened_at", "pk")
    )
    if not cases:
        raise Http404("This partner has no offboarding case you can see.")
    return FileResponse(
        case_record.partner_records_zip(partner, cases, request.user),
        as_attachment=True,
        filename=case_record.partner_filename(partner),
        content_type="application/zip",
    )


@require_GET
def evidence_download(request, pk):
    try:
        evidence = EvidenceFile.objects.select_related("event").get(pk=pk)
    except (EvidenceFile.DoesNotExist, ValueError):
        raise Http404("No such file.") from None
    visibility.get_case_for(request.user, evidence.event.case_id)
    try:
        stored = evidence.file.open("rb")
    except OSError:
        # A file gone from storage (a recreated container, a restore without its media) is
        # for the operators to put back from a backup: a page saying so, never a 500.
        logger.error(
            "Evidence file %s (case %s, event %s) is missing from storage: %s",
            evidence.pk,
            evidence.event.case_id,
            evidence.event_id,
            evidence.file.name,
        )
        return render(
            request,
            "offboarding/evidence_missing.html",
            {
                "evidence": evidence,
                "case_id": evidence.event.case_id,
                "digest": recorded_digest(evidence),
            },
            status=410,
        )
    return FileResponse(stored, as_attachment=True, filename=evidence.original_name)


def start_offboarding(request, partner_pk):
    partner = get_partner_for(request.user, partner_pk)
    if not access.can_open_case(request.user, partner):
        messages.error(request, "Only the partner's own CAM can start offboarding.")
        return redirect("partner_detail", pk=partner.pk)
    if request.method == "POST":
        form = RequestForm(request.POST, request.FILES)
        if form.is_valid():
            try:
                case = services.open_case(
                    actor=request.user,
                    partner_id=partner.pk,
                    data=form.step_data(),
                    note=form.cleaned_data.get("note", ""),
                    evidence=form.cleaned_data.get("evidence", []),
                )
            except services.ActionRefused as refusal:
                form.add_error(None, str(refusal))
            else:
                messages.success(request, f"Offboarding opened for {partner}.")
                return redirect("case_detail", pk=case.pk)
        status = 400
    else:
        form = RequestForm()
        status = 200
    return render(
        request,
        "offboarding/start.html",
        {"partner": partner, "form": form, "step": STEP_BY_NUMBER[1]},
        status=status,
    )


def home(request):
    if has_role(request.user, Role.MANAGER):
        return redirect("case_list")
    return redirect("my_work")
