"""CAR's pages: step 8's money actions, the final statement, the console, the exceptions."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect

from core.safe_csv import csv_response
from offboarding import access, selectors, visibility
from offboarding.models import Case
from offboarding.pages import may_change_money, money_form_shown, render_case_page
from offboarding.process import Lane
from offboarding.services import ActionRefused, CaseMovedOn
from payouts.selectors import final_statement, partner_payouts, payments_after_offboard_rows
from payouts.statement_csv import statement_csv_rows

from . import idempotency, overrides, services
from .console import car_console
from .forms import MONEY_FORMS
from .overrides import OverrideRequested


def _back_to_case(request, case):
    """The case page after a money action, loaded whole: an htmx request is told to go
    there, as a redirect it followed itself would draw the page in the form's place."""
    url = reverse("case_detail", args=[case.pk])
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


def _form_again(request, case, kind, form):
    """A money form with what was wrong: htmx swaps it in place of the one sent; without
    JavaScript the whole case page comes back, the form drawn in its money panel."""
    if request.htmx:
        # 200, not 400: htmx swaps only a successful response in.
        return render(
            request,
            "offboarding/_money_form.html",
            {"shown": money_form_shown(case, kind, form=form)},
        )
    return render_case_page(request, case, status=400, **{kind.context_name: form})


@require_GET
def money_form(request, pk, form_name):
    """One of step 8's money forms, opened from the case page: alone for htmx, which draws
    it in the money panel; for a plain link (no JavaScript), the case page drawing it."""
    case = selectors.case_detail(request.user, pk)
    kind = MONEY_FORMS.get(form_name)
    if kind is None:
        raise Http404("No such form.")
    if not access.can_perform(request.user, case, Lane.CAR):
        raise PermissionDenied("Only CAR can change what is paid or owed.")
    if not may_change_money(request.user, case):
        messages.warning(request, str(CaseMovedOn()))
        return _back_to_case(request, case)
    if request.htmx:
        response = render(
            request, "offboarding/_money_form.html", {"shown": money_form_shown(case, kind)}
        )
    else:
        response = render_case_page(request, case, money_form=kind)
    patch_vary_headers(response, ("HX-Request",))
    return response


def _money_action(request, pk, kind, perform, success):
    case = selectors.case_detail(request.user, pk)
    if not access.can_perform(request.user, case, Lane.CAR):
        messages.error(request, "Only CAR can change what is paid or owed.")
        return _back_to_case(request, case)
    # A resubmitted payment (double click, retry, second tab): its payout may be paid by
    # now, so the form offers all of the partner's payouts and the service compares the
    # request with the first one (the same: success again; another: refused).
    replay = idempotency.key_used(request.POST.get("idempotency_key"))
    if not replay and request.POST.get("expected_state") != case.state:
        messages.warning(request, str(CaseMovedOn()))
        return _back_to_case(request, case)
    payouts = list(partner_payouts(case.partner)) if replay else None
    form = kind.form_class(
        request.POST, case=case, payouts=payouts, auto_id=f"id_{kind.context_name}_%s"
    )
    if not form.is_valid():
        return _form_again(request, case, kind, form)
    try:
        perform(case, form.cleaned_data)
    except CaseMovedOn as refusal:
        messages.warning(request, str(refusal))
        return _back_to_case(request, case)
    except OverrideRequested as requested:
        messages.info(request, str(requested))
        return _back_to_case(request, case)
    except ActionRefused as refusal:
        form.add_error(None, str(refusal))
        return _form_again(request, case, kind, form)
    messages.success(request, success)
    return _back_to_case(request, case)


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

    return _money_action(request, pk, MONEY_FORMS["payment"], perform, "Payment recorded.")


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

    return _money_action(request, pk, MONEY_FORMS["pay-in-full"], perform, "Payouts paid in full.")


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

    return _money_action(request, pk, MONEY_FORMS["void"], perform, "Payout voided.")


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

    return _money_action(request, pk, MONEY_FORMS["order"], perform, "Order resolved.")


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
    return _back_to_case(request, case)


@require_GET
def statement(request, pk):
    case = visibility.get_case_for(request.user, pk, Case.objects.select_related("partner"))
    if not access.can_read_money(request.user):
        raise PermissionDenied("The final statement is for CAR and partner-ops managers.")
    data = final_statement(case)
    if request.GET.get("format") == "csv":
        return _statement_csv(case, data)
    return render(request, "payouts/statement.html", {"case": case, "statement": data})


def _statement_csv(case, data):
    response, writer = csv_response(f"statement-case-{case.pk}.csv")
    writer.writerows(statement_csv_rows(case, data))
    return response


@require_GET
def console(request):
    if not access.can_open_car_console(request.user):
        raise PermissionDenied("The CAR console is for CAR and partner-ops managers.")
    return render(request, "payouts/console.html", car_console(request.user))


@require_GET
def payments_after_offboard(request):
    if not access.can_read_money(request.user):
        raise PermissionDenied("This report is for CAR and partner-ops managers.")
    return render(
        request,
        "payouts/payments_after_offboard.html",
        {"rows": payments_after_offboard_rows(1000)},
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
