"""CAR's pages: step 8's money actions, the final statement, the console, the exceptions."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from core.safe_csv import csv_response
from offboarding import access, selectors, visibility
from offboarding.models import Case
from offboarding.process import Lane
from offboarding.services import ActionRefused, CaseMovedOn
from offboarding.views import render_case_page
from payouts.selectors import final_statement, partner_payouts, payments_after_offboard_rows
from payouts.statement_csv import statement_csv_rows
from payouts.statement_html import statement_rows_html

from . import idempotency, overrides, services
from .console import car_console
from .console_html import exception_rows_html, verification_items_html, waiting_rows_html
from .forms import PayInFullForm, PaymentForm, ResolveOrderForm, VoidPayoutForm
from .overrides import OverrideRequested


def _money_action(request, pk, form_class, form_name, perform, success):
    case = selectors.case_detail(request.user, pk)
    if not access.can_perform(request.user, case, Lane.CAR):
        messages.error(request, "Only CAR can change what is paid or owed.")
        return redirect("case_detail", pk=case.pk)
    # A resubmitted payment (double click, retry, second tab): its payout may be paid by
    # now, so the form offers all of the partner's payouts and the service compares the
    # request with the first one (the same: success again; another: refused).
    replay = idempotency.key_used(request.POST.get("idempotency_key"))
    if not replay and request.POST.get("expected_state") != case.state:
        messages.warning(request, str(CaseMovedOn()))
        return redirect("case_detail", pk=case.pk)
    payouts = list(partner_payouts(case.partner)) if replay else None
    form = form_class(request.POST, case=case, payouts=payouts, auto_id=f"id_{form_name}_%s")
    if not form.is_valid():
        return render_case_page(request, case, status=400, **{form_name: form})
    try:
        perform(case, form.cleaned_data)
    except CaseMovedOn as refusal:
        messages.warning(request, str(refusal))
        return redirect("case_detail", pk=case.pk)
    except OverrideRequested as requested:
        messages.info(request, str(requested))
        return redirect("case_detail", pk=case.pk)
    except ActionRefused as refusal:
        form.add_error(None, str(refusal))
        return render_case_page(request, case, status=400, **{form_name: form})
    messages.success(request, success)
    return redirect("case_detail", pk=case.pk)


@require_POST
def add_payment(request, pk):
    def perform(case, data):
        services.record_payment(
            actor=request.user,
            case_id=case.pk,
            payout_id=data["payout"].pk,
            amount=data["amount"],
            paid_on=data["paid_on"],
            method=data["method"],
            reference=data["reference"],
            idempotency_key=data["idempotency_key"],
            expected_state=data["expected_state"],
            override_reason=data["override_reason"],
        )

    return _money_action(request, pk, PaymentForm, "payment_form", perform, "Payment recorded.")


@require_POST
def pay_in_full(request, pk):
    def perform(case, data):
        services.pay_in_full(
            actor=request.user,
            case_id=case.pk,
            payout_ids=[payout.pk for payout in data["payouts_to_pay"]],
            paid_on=data["paid_on"],
            method=data["method"],
            batch_reference=data["batch_reference"],
            idempotency_key=data["idempotency_key"],
            expected_state=data["expected_state"],
        )

    return _money_action(
        request, pk, PayInFullForm, "pay_in_full_form", perform, "Payouts paid in full."
    )


@require_POST
def void_payout(request, pk):
    def perform(case, data):
        services.void_payout(
            actor=request.user,
            case_id=case.pk,
            payout_id=data["payout"].pk,
            reason=data["reason"],
            expected_state=data["expected_state"],
        )

    return _money_action(request, pk, VoidPayoutForm, "void_form", perform, "Payout voided.")


@require_POST
def resolve_order(request, pk):
    def perform(case, data):
        services.resolve_order(
            actor=request.user,
            case_id=case.pk,
            order_id=data["order"].pk,
            outcome=data["outcome"],
            note=data["note"],
            expected_state=data["expected_state"],
            override_reason=data["override_reason"],
        )

    return _money_action(request, pk, ResolveOrderForm, "order_form", perform, "Order resolved.")


@require_POST
def roll_up_commissions(request, pk):
    case = selectors.case_detail(request.user, pk)
    try:
        payouts = services.roll_up_commissions(
            actor=request.user, case_id=case.pk, expected_state=request.POST.get("expected_state")
        )
    except ActionRefused as refusal:
        messages.error(request, str(refusal))
    else:
        messages.success(request, f"{len(payouts)} payout(s) created from open commissions.")
    return redirect("case_detail", pk=case.pk)


@require_GET
def statement(request, pk):
    case = visibility.get_case_for(request.user, pk, Case.objects.select_related("partner"))
    if not access.can_read_money(request.user):
        raise PermissionDenied("The final statement is for CAR and partner-ops managers.")
    data = final_statement(case)
    if request.GET.get("format") == "csv":
        return _statement_csv(case, data)
    return render(
        request,
        "payouts/statement.html",
        {"case": case, "statement": data, "statement_rows": statement_rows_html(data.lines)},
    )


def _statement_csv(case, data):
    response, writer = csv_response(f"statement-case-{case.pk}.csv")
    writer.writerows(statement_csv_rows(case, data))
    return response


@require_GET
def console(request):
    if not (access.holds_lane(request.user, Lane.CAR) or access.can_read_money(request.user)):
        raise PermissionDenied("The CAR console is for CAR and partner-ops managers.")
    context = car_console(request.user)
    context["rows_html"] = waiting_rows_html(context["rows"])
    context["verification_html"] = verification_items_html(context["verification_queue"])
    context["exceptions_html"] = exception_rows_html(context["exceptions"])
    context["pending_overrides"] = list(overrides.awaiting_approval())
    context["can_decide"] = access.holds_lane(request.user, Lane.CAR)
    return render(request, "payouts/console.html", context)


@require_GET
def payments_after_offboard(request):
    if not access.can_read_money(request.user):
        raise PermissionDenied("This report is for CAR and partner-ops managers.")
    rows = payments_after_offboard_rows(1000)
    return render(
        request,
        "payouts/payments_after_offboard.html",
        {"rows": rows, "rows_html": exception_rows_html(rows)},
    )


def _decide_override(request, pk, decide, success):
    try:
        override = decide()
    except ActionRefused as refusal:
        messages.error(request, str(refusal))
    else:
        messages.success(request, success.format(override=override))
    back = request.POST.get("next", "")
    safe = url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()})
    return redirect(back if safe else "car_console")


@require_POST
def approve_override(request, pk):
    return _decide_override(
        request,
        pk,
        lambda: overrides.approve_override(actor=request.user, override_id=pk),
        "Override approved: the {override.describe} can now be recorded by its requester.",
    )


@require_POST
def refuse_override(request, pk):
    return _decide_override(
        request,
        pk,
        lambda: overrides.refuse_override(
            actor=request.user, override_id=pk, reason=request.POST.get("reason", "")
        ),
        "Override refused; the requester is told.",
    )
