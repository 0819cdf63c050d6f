"""Forms CAR fills in during step 8 and for imports. Amounts are parsed as Decimals."""

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from django import forms

from offboarding import step_rules
from offboarding.forms import DateField, not_in_future
from payouts.models import OrderStatus, PaymentMethod
from payouts.selectors import open_orders, outstanding_payouts

AMOUNT_ERRORS = {
    "invalid": "Enter the amount as a positive decimal, e.g. 125.00.",
    "min_value": "The amount must be positive (at least 0.01).",
    "max_decimal_places": "Use at most two decimal places (cents).",
    "max_digits": "That amount is too large.",
}


class CaseMoneyForm(forms.Form):
    """Carries the state the form was shown for and a key that makes resubmission harmless.

    The partner's outstanding payouts are read once (or handed in by the page, which has
    them already) and offered as plain choices, so several forms on a page cost no query.
    """

    expected_state = forms.CharField(widget=forms.HiddenInput)
    idempotency_key = forms.UUIDField(widget=forms.HiddenInput)

    def __init__(self, *args, case, payouts=None, orders=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.case = case
        self.fields["expected_state"].initial = case.state
        self.fields["idempotency_key"].initial = uuid.uuid4()
        if payouts is None:
            payouts = list(outstanding_payouts(case.partner))
        self.payouts = {payout.pk: payout for payout in payouts}

    def payout_choices(self, payouts, label):
        return [(payout.pk, label(payout)) for payout in payouts]

    def payout_for(self, value):
        try:
            return self.payouts[int(value)]
        except (KeyError, TypeError, ValueError):
            raise forms.ValidationError(
                "That payout is no longer open for this partner; reload the page."
            ) from None


class PaymentForm(CaseMoneyForm):
    payout = forms.ChoiceField(label="Payout")
    amount = forms.DecimalField(
        label="Amount paid",
        max_digits=14,
        decimal_places=2,
        min_value=Decimal("0.01"),
        error_messages=AMOUNT_ERRORS,
    )
    paid_on = DateField(label="Paid on")
    method = forms.ChoiceField(label="Method", choices=PaymentMethod.choices)
    reference = forms.CharField(label="Payment reference", max_length=80)
    override_reason = forms.CharField(
        label="Override reason (only after the offboard date)",
        help_text="After the offboard date a payment needs an override approved by a second "
        "CAR user: give the reason to ask for one.",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["payout"].choices = self.payout_choices(
            self.payouts.values(),
            lambda p: f"{p.reference} · {p.description} · {p.remaining} of {p.amount} {p.currency}",
        )

    def clean_payout(self):
        return self.payout_for(self.cleaned_data["payout"])

    def clean_paid_on(self):
        return not_in_future(self.cleaned_data["paid_on"], "The payment date")


class PayInFullForm(CaseMoneyForm):
    payouts_to_pay = forms.MultipleChoiceField(
        label="Payouts to pay in full", widget=forms.CheckboxSelectMultiple
    )
    paid_on = DateField(label="Paid on")
    method = forms.ChoiceField(label="Method", choices=PaymentMethod.choices)
    batch_reference = forms.CharField(label="Batch payment reference", max_length=60)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["payouts_to_pay"].choices = self.payout_choices(
            self.payouts.values(), lambda p: f"{p.reference} · {p.remaining} {p.currency}"
        )

    def clean_payouts_to_pay(self):
        return [self.payout_for(value) for value in self.cleaned_data["payouts_to_pay"]]

    def clean_paid_on(self):
        return not_in_future(self.cleaned_data["paid_on"], "The payment date")


def voidable(payouts) -> list:
    """The payouts that can be voided: those with nothing paid on them."""
    return [payout for payout in payouts if not payout.paid_amount]


class VoidPayoutForm(CaseMoneyForm):
    payout = forms.ChoiceField(label="Payout to void")
    reason = forms.CharField(label="Why is it voided?", max_length=300)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["payout"].choices = self.payout_choices(
            voidable(self.payouts.values()),
            lambda p: f"{p.reference} · {p.amount} {p.currency}",
        )

    def clean_payout(self):
        return self.payout_for(self.cleaned_data["payout"])


class ResolveOrderForm(CaseMoneyForm):
    order = forms.ModelChoiceField(label="Open order", queryset=None)
    outcome = forms.ChoiceField(
        choices=[
            (OrderStatus.CLOSED, "Closed: its commission is earned"),
            (OrderStatus.CANCELLED, "Cancelled: nothing is earned"),
        ],
        widget=forms.RadioSelect,
    )
    note = forms.CharField(label="Note", max_length=300, required=False)
    override_reason = forms.CharField(
        label="Override reason (only after the offboard date)",
        help_text="Closing an order after the offboard date earns a commission, which needs "
        "an override approved by a second CAR user.",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def __init__(self, *args, orders=None, payouts=None, **kwargs):
        super().__init__(*args, payouts=(), **kwargs)
        order = self.fields["order"]
        order.queryset = open_orders(self.case.partner)
        if orders is not None:
            # The case page has the open orders already (its balance: the same query and
            # order), so they are offered as they are instead of read again. A submitted
            # form is validated against the database (the queryset above).
            order.choices = [
                ("", order.empty_label),
                *((o.pk, order.label_from_instance(o)) for o in orders),
            ]

    def clean(self):
        cleaned = super().clean()
        if "outcome" in cleaned and (
            problem := step_rules.order_resolution_problem(cleaned["outcome"], cleaned.get("note"))
        ):
            self.add_error("note", problem)
        return cleaned


class RollUpCommissionsForm(forms.Form):
    """Nothing to fill in: the button turns the open commissions into payouts."""

    expected_state = forms.CharField(widget=forms.HiddenInput)

    def __init__(self, *args, case, payouts=None, orders=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.case = case
        self.fields["expected_state"].initial = case.state


@dataclass(frozen=True)
class MoneyFormKind:
    """One of step 8's forms: the case page offers it, and draws it when it is chosen."""

    name: str  # in its URLs: /cases/<pk>/money/<name>/ and the case page's ?money=<name>
    context_name: str  # the bound form's name in the case page's context
    title: str
    button: str
    action: str  # the URL name of the view the form posts to
    form_class: type
    offered: Callable  # (Balance) -> bool: whether the balance has anything for it
    button_class: str = "btn-outline-primary"
    lead: str = ""


MONEY_FORMS = {
    kind.name: kind
    for kind in (
        MoneyFormKind(
            "payment",
            "payment_form",
            "Record a payment",
            "Record payment",
            "add_payment",
            PaymentForm,
            lambda balance: bool(balance.payouts),
        ),
        MoneyFormKind(
            "pay-in-full",
            "pay_in_full_form",
            "Pay several in full",
            "Pay selected in full",
            "pay_in_full",
            PayInFullForm,
            lambda balance: bool(balance.payouts),
        ),
        MoneyFormKind(
            "void",
            "void_form",
            "Void a payout",
            "Void payout",
            "void_payout",
            VoidPayoutForm,
            lambda balance: bool(voidable(balance.payouts)),
            button_class="btn-outline-danger",
        ),
        MoneyFormKind(
            "commissions",
            "roll_up_form",
            "Create payouts from open commissions",
            "Create payouts",
            "roll_up_commissions",
            RollUpCommissionsForm,
            lambda balance: bool(balance.commissions),
            lead="The open commissions become one payout per currency.",
        ),
        MoneyFormKind(
            "order",
            "order_form",
            "Resolve an open order",
            "Resolve order",
            "resolve_order",
            ResolveOrderForm,
            lambda balance: bool(balance.orders),
        ),
    )
}


class LedgerImportForm(forms.Form):
    kind = forms.ChoiceField(
        choices=[("commissions", "Commissions"), ("orders", "Open orders"), ("payouts", "Payouts")]
    )
    file = forms.FileField(label="CSV file")

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > 20 * 1024 * 1024:
            raise forms.ValidationError("The file is larger than 20 MB; split it.")
        return upload
