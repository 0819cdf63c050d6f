"""`{{ form|bootstrap_form }}` writes what crispy-bootstrap5's `{{ form|crispy }}` writes.

Every form of the app is compared, empty, bound with errors, and bound with what a person
entered, element by element: tags, attributes, classes and text (whitespace between
tags aside, which the browser ignores here)."""

import copy
import datetime as dt
from decimal import Decimal
from html.parser import HTMLParser

import pytest
from crispy_forms.helper import FormHelper
from crispy_forms.templatetags.crispy_forms_filters import as_crispy_form
from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.template import Context, Template

from notifications.forms import PreferencesForm
from offboarding.forms import STEP_FORMS, MultipleFileInput, WithdrawForm
from offboarding.models import Case
from offboarding.money.forms import PayInFullForm, PaymentForm, ResolveOrderForm, VoidPayoutForm
from partnerops.form_html import bootstrap_form, handles
from payouts.models import Order, Payout
from tests.factories import CaseFactory


class _Elements(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.elements = []

    def handle_starttag(self, tag, attrs):
        self.elements.append(("<", tag, sorted(attrs)))

    def handle_endtag(self, tag):
        self.elements.append(("/", tag))

    def handle_data(self, data):
        if text := " ".join(data.split()):
            self.elements.append(("text", text))


def elements(html) -> list:
    parser = _Elements()
    parser.feed(str(html))
    parser.close()
    return parser.elements


def assert_same_as_crispy(form):
    assert handles(form), f"{type(form).__name__} would be drawn by crispy itself"
    ours = bootstrap_form(form)
    # crispy adds its classes to the widgets' attrs as it draws: give it its own copy.
    theirs = as_crispy_form(copy.deepcopy(form))
    assert elements(ours) == elements(theirs)


def _bound_variants(make, entered: dict):
    """The form empty, submitted empty (every required field's error), and submitted with
    `entered` plus a form-wide error."""
    empty = make(None)
    submitted_empty = make({})
    submitted_empty.is_valid()
    submitted = make(entered)
    submitted.is_valid()
    submitted.add_error(None, "Something is wrong with <this> & that.")
    return [empty, submitted_empty, submitted]


@pytest.fixture
def money_case(roles):
    case = CaseFactory(state="step_8", money=True, actors=roles)
    Order.objects.create(
        partner=case.partner,
        reference="OR-<1>",
        amount=Decimal("12.50"),
        currency="USD",
        ordered_on=dt.date(2026, 1, 5),
    )
    return Case.objects.select_related("partner").get(pk=case.pk)


@pytest.mark.django_db
@pytest.mark.parametrize("step_number", sorted(STEP_FORMS))
def test_every_step_form(money_case, step_number):
    form_class = STEP_FORMS[step_number]

    def make(data):
        return form_class(data, case=money_case)

    entered = {"expected_state": money_case.state, "note": "a <b>note</b>", "confirm": "on"}
    for form in _bound_variants(make, entered):
        assert_same_as_crispy(form)


@pytest.mark.django_db
def test_money_forms(money_case):
    payouts = list(Payout.objects.filter(partner=money_case.partner))
    makers = {
        "payment": lambda data: PaymentForm(
            data, case=money_case, payouts=payouts, auto_id="id_payment_form_%s"
        ),
        "pay_in_full": lambda data: PayInFullForm(
            data, case=money_case, payouts=payouts, auto_id="id_pay_in_full_form_%s"
        ),
        "void": lambda data: VoidPayoutForm(data, case=money_case, payouts=payouts),
        "order": lambda data: ResolveOrderForm(data, case=money_case),
    }
    entered = {
        "payout": str(payouts[0].pk),
        "payouts_to_pay": [str(payouts[1].pk)],
        "amount": "-5",
        "paid_on": "2026-02-30",
        "outcome": "closed",
        "reference": "R<1>",
    }
    for make in makers.values():
        for form in _bound_variants(make, entered):
            assert_same_as_crispy(form)


@pytest.mark.django_db
def test_other_pages_forms(money_case):
    makers = [
        lambda data: WithdrawForm(data, case=money_case),
        lambda data: PreferencesForm(data, current={}),
        lambda data: AuthenticationForm(None, data),
        lambda data: STEP_FORMS[1](data),  # Start offboarding: no case yet
    ]
    for make in makers:
        for form in _bound_variants(make, {"reason": "x" * 1001, "username": "u"}):
            assert_same_as_crispy(form)


class EveryWidget(forms.Form):
    """What the app's forms do not all use: groups, help text with markup, prefilled
    values, a disabled field, a field's own class, optional checkboxes."""

    title = forms.CharField(
        label="Title <i>", help_text="Shown to <em>partners</em>.", initial='Say "hi"'
    )
    secret = forms.CharField(widget=forms.PasswordInput, required=False)
    email = forms.EmailField(widget=forms.EmailInput(attrs={"class": "wide", "placeholder": "a@b"}))
    count = forms.IntegerField(disabled=True, initial=3)
    body = forms.CharField(widget=forms.Textarea, initial="<p>text</p>")
    grouped = forms.ChoiceField(
        choices=[("Fruit", [("a", "Apple"), ("b", "Banana")]), ("c", "Cherry & co")],
        initial="b",
    )
    several = forms.MultipleChoiceField(
        choices=[("Group <1>", [("x", "X"), ("y", "Y")]), ("z", "Z")],
        widget=forms.CheckboxSelectMultiple,
        help_text="Pick any.",
    )
    pick = forms.TypedChoiceField(
        choices=[(1, "One"), (2, "Two")], coerce=int, widget=forms.RadioSelect, required=False
    )
    listed = forms.MultipleChoiceField(
        choices=[("p", "P"), ("q", "Q")], widget=forms.SelectMultiple, required=False
    )
    agree = forms.BooleanField(required=False, help_text="Optional.")
    must = forms.BooleanField(label="I <agree>")
    upload = forms.FileField(widget=MultipleFileInput, help_text="Files.")
    when = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    hidden = forms.CharField(widget=forms.HiddenInput, initial="h&h")


def test_every_handled_widget():
    entered = {"title": "", "email": "not an email", "grouped": "zz", "several": ["z"]}
    for form in _bound_variants(lambda data: EveryWidget(data), entered):
        assert_same_as_crispy(form)
    prefixed = EveryWidget(prefix="p", auto_id="field_%s")
    assert_same_as_crispy(prefixed)
    # Ids come from the form's prefix: escaped as crispy's templates escape them.
    odd = EveryWidget({'p&<"-title': ""}, prefix='p&<"')
    odd.is_valid()
    assert_same_as_crispy(odd)


def test_values_and_labels_are_escaped():
    html = str(bootstrap_form(EveryWidget({"title": '"><script>x</script>'})))
    assert "<script>" not in html
    assert 'value="&quot;&gt;&lt;script&gt;x&lt;/script&gt;"' in html
    assert "Title &lt;i&gt;" in html
    assert "Shown to <em>partners</em>." in html  # help text is markup, as in crispy


def test_forms_it_does_not_handle_are_drawn_by_crispy():
    class Split(forms.Form):
        at = forms.SplitDateTimeField()

    class WithHelper(forms.Form):
        name = forms.CharField()

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.helper = FormHelper()
            self.helper.form_tag = False

    class FancyOptions(forms.Select):
        option_template_name = "fancy_option.html"

    class Fancy(forms.Form):
        pick = forms.ChoiceField(choices=[("a", "A")], widget=FancyOptions)

    assert not handles(Fancy())
    for form in (Split(), WithHelper()):
        assert not handles(form)
        assert bootstrap_form(form) == as_crispy_form(copy.deepcopy(form))


def test_the_template_filter():
    html = Template("{% load form_html %}{{ form|bootstrap_form }}").render(
        Context({"form": WithdrawForm()})
    )
    assert elements(html) == elements(as_crispy_form(WithdrawForm()))
    assert 'id="div_id_reason"' in html
