"""CAR's pages: step 8's money actions, the final statement, the console, the exceptions."""

import csv
import uuid

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from offboarding import access, selectors
from offboarding.models import Case
from offboarding.process import Lane
from offboarding.services import ActionRefused, CaseMovedOn
from offboarding.views import render_case_page

from . import services
from .console import car_console
from .console_html import exception_rows_html, verification_items_html, waiting_rows_html
from .forms import PayInFullForm, PaymentForm, ResolveOrderForm, VoidPayoutForm
from .models import Payment
from .selectors import final_statement, payments_after_offboard_rows
from .statement_html import statement_rows_html


def _replayed(request, case) -> bool:
    """A resubmitted form (double click, retry, second tab) whose payments already exist."""
    try:
        key = uuid.UUID(request.POST.get("idempotency_key", ""))
    except ValueError:
        return False
    keys = [key] + [
        uuid.uuid5(key, value) for value in request.POST.getlist("payouts_to_pay") if value
    ]
    return Payment.objects.filter(case=case, idempotency_key__in=keys).exists()


def _money_action(request, pk, form_class, form_name, perform, success):
    case = selectors.case_detail(request.user, pk)
    if not access.can_perform(request.user, case, Lane.CAR):
        messages.error(request, "Only CAR can change what is paid or owed.")
        return redirect("case_detail", pk=case.pk)
    if _replayed(request, case):
        messages.success(request, success)
        return redirect("case_detail", pk=case.pk)
    if request.POST.get("expected_state") != case.state:
        messages.warning(request, str(CaseMovedOn()))
        return redirect("case_detail", pk=case.pk)
    form = form_class(request.POST, case=case, auto_id=f"id_{form_name}_%s")
    if not form.is_valid():
        return render_case_page(request, case, status=400, **{form_name: form})
    try:
        perform(case, form.cleaned_data)
    except CaseMovedOn as refusal:
        messages.warning(request, str(refusal))
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


def _can_read_money(user) -> bool:
    return user.is_superuser or user.has_perm("payouts.view_payout")


@require_GET
def statement(request, pk):
    case = access.get_case_for(request.user, pk, Case.objects.select_related("partner"))
    if not _can_read_money(request.user):
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
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="statement-case-{case.pk}.csv"'
    writer = csv.writer(response)
    writer.writerow(
        [
            "partner",
            case.partner.display_name,
            "record id",
            case.partner.record_id,
            "notice date",
            data.notice_date or "",
        ]
    )
    writer.writerow(
        [
            "payout",
            "currency",
            "status",
            "owed_at_notice",
            "payment_reference",
            "paid_on",
            "method",
            "paid",
            "recorded_by",
            "remaining",
            "void_reason",
        ]
    )
    for line in data.lines:
        base = [
            line.payout.reference,
            line.payout.currency,
            line.payout.status,
            line.owed_at_notice,
        ]
        if not line.payments:
            writer.writerow([*base, "", "", "", "", "", line.remaining, line.payout.void_reason])
        for index, payment in enumerate(line.payments):
            last = index == len(line.payments) - 1
            writer.writerow(
                [
                    *base,
                    payment.reference,
                    payment.paid_on,
                    payment.method,
                    payment.amount,
                    payment.recorded_by_username,
                    line.remaining if last else "",
                    line.payout.void_reason if last else "",
                ]
            )
    for currency, sums in data.totals.items():
        writer.writerow(
            [
                "TOTAL",
                currency,
                "",
                sums["owed_at_notice"],
                "",
                "",
                "",
                sums["paid"],
                "",
                sums["remaining"],
                "",
            ]
        )
    return response


@require_GET
def console(request):
    if not (access.holds_lane(request.user, Lane.CAR) or _can_read_money(request.user)):
        raise PermissionDenied("The CAR console is for CAR and partner-ops managers.")
    context = car_console(request.user)
    context["rows_html"] = waiting_rows_html(context["rows"])
    context["verification_html"] = verification_items_html(context["verification_queue"])
    context["exceptions_html"] = exception_rows_html(context["exceptions"])
    return render(request, "payouts/console.html", context)


@require_GET
def payments_after_offboard(request):
    if not _can_read_money(request.user):
        raise PermissionDenied("This report is for CAR and partner-ops managers.")
    rows = payments_after_offboard_rows(1000)
    return render(
        request,
        "payouts/payments_after_offboard.html",
        {"rows": rows, "rows_html": exception_rows_html(rows)},
    )
