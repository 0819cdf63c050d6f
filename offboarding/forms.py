"""One form per step, used by the case page and by Django admin alike.

A form validates what the person entered; `step_data()` is what the transition receives.
A step names its form in `process.Step.form`; the step's rules on the data are in
`step_rules`, which the form asks in `clean()` and the services ask again.
"""

import datetime as dt
from pathlib import Path

from django import forms
from django.conf import settings
from django.template.defaultfilters import filesizeformat

from partners.models import Licence, LicenceStatus, Portal, ReferralLinkStatus

from . import step_rules
from .models import Initiator, Reason, RequestChannel
from .process import STEPS, Step
from .step_rules import date_window_problem

STEP_BY_FORM = {step.form: step for step in STEPS}

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


def validate_date_window(value: dt.date) -> None:
    problem = date_window_problem(value)
    if problem:
        raise forms.ValidationError(problem, code="date_window")


class DateField(forms.DateField):
    """Every date field of our forms: a date picker, and only dates in the window."""

    widget = DateInput
    default_validators = [validate_date_window]


def not_in_future(value: dt.date, label: str) -> dt.date:
    problem = step_rules.future_date_problem(value, label)
    if problem:
        raise forms.ValidationError(problem)
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
    step: Step | None = None  # the step whose `form` names this class

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.step = STEP_BY_FORM.get(cls.__name__)

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

    def clean(self):
        cleaned = super().clean()
        if self.step is not None:
            entered = {k: v for k, v in cleaned.items() if k not in self.control_fields}
            problems = step_rules.check(
                self.step, entered, case=self.case, evidence=cleaned.get("evidence") or ()
            )
            for problem in problems:
                field = problem.field if problem.field in self.fields else None
                if field is None or field not in self.errors:  # one error per field
                    self.add_error(field, problem.message)
        return cleaned

    def step_data(self) -> dict:
        return {k: v for k, v in self.cleaned_data.items() if k not in self.control_fields}

    def lead(self) -> str:
        """What the case page says above the form's fields ("" for nothing)."""
        return ""


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


class PortalAdminNoticeForm(StepForm):
    """Step 11."""

    confirm_label = "The portal admin is told the last payment is verified as paid"


class DeactivateLinksForm(StepForm):
    """Step 12."""

    confirm_label = "Deactivate all of the partner's active referral links"

    def lead(self) -> str:
        return f"{self.case.partner.referral_links.count()} referral link(s) on record."

    def step_data(self) -> dict:
        links = self.case.partner.referral_links.filter(status=ReferralLinkStatus.ACTIVE)
        codes = list(links.values_list("code", flat=True))
        return {"links_deactivated": len(codes), "link_codes": codes}


class ConfirmRemovalForm(StepForm):
    """Step 13."""

    confirm_label = "Remove the partner from the program (the portal archives it)"


# Each step's form, found from the names process.STEPS gives (a test checks all resolve).
STEP_FORMS: dict[int, type[StepForm]] = {
    form.step.number: form for form in StepForm.__subclasses__() if form.step is not None
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
