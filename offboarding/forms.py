"""One form per step, used by the case page and by Django admin alike.

A form validates what the person entered; `step_data()` is what the transition receives.
"""

import datetime as dt
from pathlib import Path

from django import forms
from django.conf import settings
from django.template.defaultfilters import filesizeformat
from django.utils import timezone

from partners.models import Licence, LicenceStatus, Portal, ReferralLinkStatus

from .models import Initiator, Reason, RequestChannel
from .process import NOTICE_PERIOD_DAYS

YES_NO = [("yes", "Yes"), ("no", "No")]


class DateInput(forms.DateInput):
    input_type = "date"


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class EvidenceField(forms.FileField):
    """Zero or more uploaded files, each checked for type and size."""

    widget = MultipleFileInput

    def clean(self, data, initial=None):
        files = data if isinstance(data, list | tuple) else ([data] if data else [])
        if not files and self.required:
            raise forms.ValidationError(self.error_messages["required"], code="required")
        cleaned = [super(EvidenceField, self).clean(item, initial) for item in files]
        allowed = {ext.lower() for ext in settings.EVIDENCE_EXTENSIONS}
        for upload in cleaned:
            extension = Path(upload.name).suffix.lower().lstrip(".")
            if extension not in allowed:
                raise forms.ValidationError(
                    f"{upload.name}: .{extension or '?'} files are not accepted; "
                    f"use one of {', '.join(sorted(allowed))}."
                )
            if upload.size > settings.EVIDENCE_MAX_BYTES:
                raise forms.ValidationError(
                    f"{upload.name} is {filesizeformat(upload.size)}; the limit is "
                    f"{filesizeformat(settings.EVIDENCE_MAX_BYTES)}."
                )
        return cleaned


# Issue 15: a date far from any real one (year 1, year 9999) is a slip or a hand-made
# request. Accepted, it would reach the business-day arithmetic (which overflows near the
# end of year 9999), the offboard date and the payment guard. Every date a person enters,
# through a form or straight to a service, must fall in this window.
EARLIEST_DATE = dt.date(2000, 1, 1)
LATEST_DATE = dt.date(2100, 12, 31)


def date_window_problem(value: dt.date | None, label: str = "The date") -> str:
    """Why `value` is outside the window of dates PartnerOps accepts, or "" if it is not."""
    if value is None or EARLIEST_DATE <= value <= LATEST_DATE:
        return ""
    return (
        f"{label} {value.isoformat()} is outside the dates PartnerOps accepts "
        f"({EARLIEST_DATE.isoformat()} to {LATEST_DATE.isoformat()}): check the year."
    )


def validate_date_window(value: dt.date) -> None:
    problem = date_window_problem(value)
    if problem:
        raise forms.ValidationError(problem, code="date_window")


class DateField(forms.DateField):
    """Every date field of our forms: a date picker, and only dates in the window."""

    widget = DateInput
    default_validators = [validate_date_window]


def not_in_future(value: dt.date, label: str) -> dt.date:
    if value and value > timezone.localdate():
        raise forms.ValidationError(f"{label} cannot be in the future.")
    return value


class StepForm(forms.Form):
    """What every step form carries: the state it was rendered for, a note, evidence."""

    expected_state = forms.CharField(widget=forms.HiddenInput)
    note = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2}), help_text="Optional."
    )
    evidence = EvidenceField(
        required=False,
        label="Evidence files",
        help_text="Optional supporting documents (PDF, image, email, text).",
    )
    confirm_label: str | None = None
    control_fields: tuple[str, ...] = ("expected_state", "note", "evidence", "confirm")

    def __init__(self, *args, case=None, **kwargs):
        self.case = case
        super().__init__(*args, **kwargs)
        if case is not None and "expected_state" in self.fields:
            self.fields["expected_state"].initial = case.state
        if self.confirm_label:
            self.fields["confirm"] = forms.BooleanField(label=self.confirm_label, required=True)
        # The step's own questions first; the note, evidence and confirmation after them.
        trailing = ["note", "evidence", "confirm"]
        self.order_fields([name for name in self.fields if name not in trailing] + trailing)

    def step_data(self) -> dict:
        return {k: v for k, v in self.cleaned_data.items() if k not in self.control_fields}


class RequestForm(StepForm):
    """Step 1, recorded as the case is opened: there is no earlier state to compare."""

    expected_state = None

    initiated_by = forms.ChoiceField(
        label="Who initiated the request?", choices=Initiator.choices, widget=forms.RadioSelect
    )
    reason = forms.ChoiceField(label="Reason", choices=[("", "—")] + Reason.choices)
    reason_detail = forms.CharField(
        label="Detail", required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    request_received_on = DateField(label="Date the request was received")
    request_channel = forms.ChoiceField(label="Channel", choices=RequestChannel.choices)
    field_order = [
        "initiated_by",
        "reason",
        "reason_detail",
        "request_received_on",
        "request_channel",
        "note",
        "evidence",
    ]

    def clean_request_received_on(self):
        return not_in_future(self.cleaned_data["request_received_on"], "The request date")

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("reason") == Reason.OTHER and not cleaned.get("reason_detail", "").strip():
            self.add_error("reason_detail", "Say what the reason is when you choose 'Other'.")
        return cleaned


class CompanyRemovalForm(StepForm):
    """Step 2."""

    legal_action = forms.TypedChoiceField(
        label="Is legal action required?",
        choices=YES_NO,
        coerce=lambda v: v == "yes",
        widget=forms.RadioSelect,
    )
    notice_date = DateField(label="Date the 30-day notice was sent, or legal action was recorded")
    field_order = ["legal_action", "notice_date", "evidence", "note"]

    def clean_notice_date(self):
        return not_in_future(self.cleaned_data["notice_date"], "The notice date")

    def clean(self):
        cleaned = super().clean()
        if (
            cleaned.get("legal_action")
            and not cleaned.get("evidence")
            and "evidence" not in self.errors
        ):
            self.add_error(
                "evidence", "Legal action needs its supporting documents: upload at least one."
            )
        notice = cleaned.get("notice_date")
        if notice and self.case and notice < self.case.request_received_on:
            self.add_error("notice_date", "The notice cannot predate the request (step 1).")
        return cleaned


class ResignationForm(StepForm):
    """Step 3."""

    notice_date = DateField(label="Date the resignation notice was received")
    notice_channel = forms.ChoiceField(
        label="How was it given?",
        choices=[("email", "Email"), ("conversation", "Conversation")],
        widget=forms.RadioSelect,
    )
    requested_exit_date = DateField(label="Requested exit date")
    field_order = ["notice_date", "notice_channel", "requested_exit_date", "evidence", "note"]

    def clean_notice_date(self):
        return not_in_future(self.cleaned_data["notice_date"], "The notice date")

    def clean(self):
        cleaned = super().clean()
        notice, exit_date = cleaned.get("notice_date"), cleaned.get("requested_exit_date")
        if notice and exit_date:
            earliest = notice + dt.timedelta(days=NOTICE_PERIOD_DAYS)
            if exit_date < earliest:
                self.add_error(
                    "requested_exit_date",
                    f"A resignation needs at least {NOTICE_PERIOD_DAYS} days' notice: with "
                    f"notice on {notice:%Y-%m-%d} the exit date must be {earliest:%Y-%m-%d} "
                    f"or later ({(exit_date - notice).days} days given).",
                )
        return cleaned


class HandoffForm(StepForm):
    """Step 4."""

    confirm_label = "Sales Ops knows about this offboarding"


class PartnerRecordForm(StepForm):
    """Step 5: the 5A-5D checklist, each item with the record's reference."""

    CHECKLIST = (
        ("status_reason", "5A · Status and reason for removal set, with the offboard date"),
        ("opted_out", "5B · Marked 'Opted Out'"),
        ("distribution_group", "5C · Removed from the distribution group"),
        ("landing_pages", "5D · Access to active landing pages removed"),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for key, label in self.CHECKLIST:
            self.fields[f"{key}_done"] = forms.BooleanField(label=label, required=True)
            self.fields[f"{key}_reference"] = forms.CharField(
                label="Reference", max_length=120, help_text="Ticket or record reference."
            )
        self.order_fields(
            [name for key, _ in self.CHECKLIST for name in (f"{key}_done", f"{key}_reference")]
            + ["note"]
        )


class LicenceForm(StepForm):
    """Step 6."""

    licence = forms.ModelChoiceField(
        label="Membership licence to suspend",
        queryset=Licence.objects.none(),
        empty_label=None,
        widget=forms.RadioSelect,
        error_messages={"required": "Choose the $0 membership licence to suspend."},
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.case is not None:
            self.fields["licence"].queryset = self.case.partner.licences.filter(
                is_membership=True, status=LicenceStatus.ACTIVE
            )

    def clean(self):
        cleaned = super().clean()
        if "licence" in self.errors and not self.fields["licence"].queryset.exists():
            # With nothing to choose, the field shows no options to hang its error on.
            self.add_error(
                None,
                "This partner has no active $0 membership licence on record to suspend. "
                "Check the licence system, correct the partner's licences, then complete "
                "this step.",
            )
        return cleaned


class MoneyOnTableForm(StepForm):
    """Step 7."""

    money_on_table = forms.TypedChoiceField(
        label="Is there money on the table?",
        choices=[
            ("yes", "Yes: open commissions, orders or payouts"),
            ("no", "No: nothing is owed"),
        ],
        coerce=lambda v: v == "yes",
        widget=forms.RadioSelect,
    )
    confirm_label = "I have checked the open balance shown above"

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("money_on_table") is False and self.case and self.case.money_on_the_table():
            self.add_error(
                "money_on_table",
                "This partner has open commissions, open orders or outstanding payouts: "
                "'nothing is owed' is not possible.",
            )
        return cleaned


class ClosePayoutsForm(StepForm):
    """Step 8."""

    confirm_label = "Every open and pending payout is paid or voided"


class VerifyPayoutsForm(StepForm):
    """Step 9."""

    confirm_label = "I verified every payout on the statement is paid"


class PortalForm(StepForm):
    """Step 10 (Decision C): the CAM confirms the portal the partner record names; the
    branch follows the record. The portal shown travels with the form, so a record
    corrected meanwhile is noticed instead of confirmed unseen."""

    portal = forms.ChoiceField(choices=Portal.choices, widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.case is not None:
            portal = self.case.partner.portal
            self.fields["portal"].initial = portal
            self.fields["confirm"] = forms.BooleanField(
                label=f"The partner is on the {Portal(portal).label.lower()}, as its record says",
                help_text="The case follows the partner record. If the record is wrong, Sales "
                "Ops corrects it on this page first.",
            )

    def clean_portal(self):
        portal = self.cleaned_data["portal"]
        if self.case is not None and portal != self.case.partner.portal:
            raise forms.ValidationError(
                f"The partner record now says {self.case.partner.get_portal_display()}: "
                "review it and confirm again."
            )
        return portal


class PortalAdminNoticeForm(StepForm):
    """Step 11."""

    confirm_label = "The portal admin is told the last payment is verified as paid"


class DeactivateLinksForm(StepForm):
    """Step 12."""

    confirm_label = "Deactivate all of the partner's active referral links"

    def step_data(self) -> dict:
        links = self.case.partner.referral_links.filter(status=ReferralLinkStatus.ACTIVE)
        codes = list(links.values_list("code", flat=True))
        return {"links_deactivated": len(codes), "link_codes": codes}


class ConfirmRemovalForm(StepForm):
    """Step 13."""

    confirm_label = "Remove the partner from the program (the portal archives it)"


STEP_FORMS: dict[int, type[StepForm]] = {
    1: RequestForm,
    2: CompanyRemovalForm,
    3: ResignationForm,
    4: HandoffForm,
    5: PartnerRecordForm,
    6: LicenceForm,
    7: MoneyOnTableForm,
    8: ClosePayoutsForm,
    9: VerifyPayoutsForm,
    10: PortalForm,
    11: PortalAdminNoticeForm,
    12: DeactivateLinksForm,
    13: ConfirmRemovalForm,
}


class WithdrawForm(forms.Form):
    expected_state = forms.CharField(widget=forms.HiddenInput)
    reason = forms.CharField(
        label="Why is the case withdrawn?",
        widget=forms.Textarea(attrs={"rows": 2}),
        max_length=1000,
    )

    def __init__(self, *args, case=None, **kwargs):
        super().__init__(*args, **kwargs)
        if case is not None and "expected_state" in self.fields:
            self.fields["expected_state"].initial = case.state


class PortalCorrectionForm(forms.Form):
    """Sales Ops corrects the partner record's portal (Decision C), with the reason."""

    expected_state = forms.CharField(widget=forms.HiddenInput)
    portal = forms.ChoiceField(
        label="The partner is on", choices=Portal.choices, widget=forms.RadioSelect
    )
    reason = forms.CharField(
        label="Why is the record wrong?",
        widget=forms.Textarea(attrs={"rows": 2}),
        max_length=1000,
    )

    def __init__(self, *args, case=None, **kwargs):
        super().__init__(*args, **kwargs)
        if case is not None:
            self.fields["expected_state"].initial = case.state
            self.fields["portal"].initial = case.partner.portal
