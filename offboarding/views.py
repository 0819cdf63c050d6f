"""Case pages. Thin: load through the access helpers, validate a form, call a service."""

import logging

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import FileResponse, Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from accounts.roles import Role, has_role
from core.params import row_id
from partners.access import get_partner_for

from . import access, case_record, selectors, services, visibility
from .case_chain import recorded_digest
from .forms import STEP_FORMS, PortalCorrectionForm, RequestForm, WithdrawForm
from .models import EvidenceFile
from .pages import render_case_page
from .process import STEP_BY_NUMBER, Lane

PAGE_SIZE = 25
logger = logging.getLogger(__name__)


def _case_table(cases, number):
    """Page `number` (from ?page=; a bad one shows page 1 or the last, as get_page does) of
    `cases`, for offboarding/_case_table.html.

    The page is chosen by id, from the cases alone (an index holds what the filters and the
    order read); the partner and CAM names are then joined for those rows only."""
    page = Paginator(cases.values_list("pk", flat=True), PAGE_SIZE).get_page(number)
    return {"page": page, "rows": selectors.case_rows(page.object_list, cases.query.order_by)}


@require_GET
def my_work(request):
    cases = selectors.my_work(request.user)
    table = _case_table(cases, request.GET.get("page"))
    return render(request, "offboarding/my_work.html", table)


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
    table = _case_table(cases, request.GET.get("page"))
    if request.htmx:
        return render(request, "offboarding/_case_table.html", table)
    options = selectors.case_filter_options(
        request.user, state=filters["state"], lane=filters["lane"], cam_id=filters["cam_id"]
    )
    return render(request, "offboarding/case_list.html", {**table, **options, "filters": filters})


@require_GET
def case_detail(request, pk):
    case = selectors.case_detail(request.user, pk)
    return render_case_page(request, case)


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
