"""Step 8's money forms, one at a time: the case page offers them and draws none until one
is chosen; htmx loads the chosen form alone (offboarding.money.views.money_form) and gets
it back from its own endpoint when it has errors; without JavaScript the same links and
posts work with whole pages. Who may not see the case gets a 404, who may see it but not
change money a 403 (or, for a post, the case page with a refusal)."""

import html
import re
from decimal import Decimal
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from offboarding.money.forms import MONEY_FORMS
from payouts.models import Payment
from tests.factories import CaseFactory, PartnerFactory
from tests.test_car_pages import (
    MONEY_ACTIONS,
    NOT_CAR,
    _ledger,
    _money_case,
    _payment_post,
    _valid_post,
)

pytestmark = pytest.mark.django_db

HX = {"HTTP_HX_REQUEST": "true"}


class Forms(HTMLParser):
    """The POST forms of a page (their actions), and the links htmx loads forms with."""

    def __init__(self):
        super().__init__()
        self.actions = []
        self.hx_gets = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and attrs.get("method") == "post":
            self.actions.append(attrs.get("action"))
        if attrs.get("data-hx-get"):
            self.hx_gets.append((attrs["data-hx-get"], attrs.get("href")))


def _forms(response) -> Forms:
    parser = Forms()
    parser.feed(response.content.decode())
    return parser


def _case_forms(response):
    """The page's POST forms but the navigation's log-out button."""
    return [action for action in _forms(response).actions if action != reverse("logout")]


def _messages(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


def _form_url(case, name):
    return reverse("money_form", args=[case.pk, name])


# ---- the case page: the step's form, and the money forms only as choices ----


def test_the_case_page_draws_the_step_form_and_offers_the_money_forms(client, roles):
    world = _money_case(roles)
    case = world["case"]
    client.force_login(roles["car"])

    page = client.get(reverse("case_detail", args=[case.pk]))

    assert page.status_code == 200
    assert _case_forms(page) == [reverse("complete_step", args=[case.pk, 8])]
    # Every form the balance has something for, each a link htmx follows into #money-form.
    offered = [(url, href) for url, href in _forms(page).hx_gets if "/money/" in url]
    names = ["payment", "pay-in-full", "void", "commissions", "order"]
    assert offered == [
        (_form_url(case, name), f"{_form_url(case, name)}#money-form") for name in names
    ]
    text = html.unescape(page.content.decode())
    for name in names:
        assert MONEY_FORMS[name].title in text
    assert 'id="money-form"' in text
    assert 'data-hx-target="#money-form"' in text


def test_only_the_forms_the_balance_needs_are_offered(client, roles):
    """A partner with one unpaid payout and nothing else: pay it, pay in full or void it."""
    partner = PartnerFactory(cam=roles["cam"])
    case = CaseFactory(state="step_8", money=True, actors=roles, partner=partner)
    client.force_login(roles["car"])

    page = client.get(reverse("case_detail", args=[case.pk]))

    offered = [url for url, _ in _forms(page).hx_gets if "/money/" in url]
    assert offered == [_form_url(case, name) for name in ("payment", "pay-in-full", "void")]


@pytest.mark.parametrize("username", NOT_CAR)
def test_who_may_not_change_money_is_offered_no_money_form(client, roles, username):
    world = _money_case(roles)
    client.force_login(roles[username])

    page = client.get(reverse("case_detail", args=[world["case"].pk]))

    assert page.status_code == 200
    assert not [url for url, _ in _forms(page).hx_gets if "/money/" in url]
    assert 'id="money-form"' not in page.content.decode()
    for kind in MONEY_FORMS.values():
        assert reverse(kind.action, args=[world["case"].pk]) not in page.content.decode()


# ---- opening a form ----


@pytest.mark.parametrize("name", sorted(MONEY_FORMS))
def test_htmx_opens_the_form_alone(client, roles, name):
    world = _money_case(roles)
    case = world["case"]
    kind = MONEY_FORMS[name]
    client.force_login(roles["car"])

    response = client.get(_form_url(case, name), **HX)

    assert response.status_code == 200
    assert "HX-Request" in response["Vary"]
    body = response.content.decode()
    assert "<html" not in body and "<h1" not in body  # the form, not the page
    assert re.search(r'<div id="money-form"', body)
    action = reverse(kind.action, args=[case.pk])
    assert _forms(response).actions == [action]
    assert f'data-hx-post="{action}"' in body
    assert kind.button in html.unescape(body)
    assert 'name="expected_state" value="step_8"' in body
    assert 'name="csrfmiddlewaretoken"' in body


def test_the_payment_form_offers_the_outstanding_payouts(client, roles):
    world = _money_case(roles)
    client.force_login(roles["car"])

    body = client.get(_form_url(world["case"], "payment"), **HX).content.decode()

    for payout in (world["usd"], world["eur"]):
        assert f'<option value="{payout.pk}">{payout.reference} · ' in body


def test_without_javascript_the_link_opens_the_case_page_with_that_form(client, roles):
    world = _money_case(roles)
    case = world["case"]
    client.force_login(roles["car"])

    response = client.get(_form_url(case, "void"))

    assert response.status_code == 200
    assert "HX-Request" in response["Vary"]
    assert "<h1" in response.content.decode()  # the whole page
    assert _case_forms(response) == [
        reverse("void_payout", args=[case.pk]),
        reverse("complete_step", args=[case.pk, 8]),
    ]
    # Only payouts with nothing paid on them can be voided: both are unpaid here.
    select = re.search(r'<select name="payout".*?</select>', response.content.decode(), re.S)
    offered = {int(v) for v in re.findall(r'<option value="(\d+)"', select.group(0))}
    assert offered == {world["usd"].pk, world["eur"].pk}


def test_an_unknown_form_is_404(client, roles):
    world = _money_case(roles)
    client.force_login(roles["car"])
    assert client.get(_form_url(world["case"], "no-such-form"), **HX).status_code == 404
    assert client.get(_form_url(world["case"], "no-such-form")).status_code == 404


@pytest.mark.parametrize("htmx", [True, False], ids=["htmx", "plain"])
def test_opening_a_form_of_a_case_past_step_8_says_it_moved_on(client, roles, htmx):
    case = CaseFactory(state="step_9", money=True, actors=roles)
    client.force_login(roles["car"])

    response = client.get(_form_url(case, "payment"), **(HX if htmx else {}))

    case_url = reverse("case_detail", args=[case.pk])
    if htmx:
        assert response.status_code == 200
        assert response["HX-Redirect"] == case_url
    else:
        assert response.status_code == 302
        assert response["Location"] == case_url
    assert any("moved on" in m for m in _messages(response))


# ---- posting a form opened by htmx ----


def test_an_htmx_post_that_succeeds_sends_the_browser_to_the_case_page(client, roles):
    world = _money_case(roles)
    case = world["case"]
    client.force_login(roles["car"])

    response = client.post(
        reverse("add_payment", args=[case.pk]),
        _payment_post(case, world["usd"], amount="25.00", reference="ACH-HX-1"),
        **HX,
    )

    assert response.status_code == 200
    assert response["HX-Redirect"] == reverse("case_detail", args=[case.pk])
    assert any("Payment recorded" in m for m in _messages(response))
    payment = Payment.objects.get()
    assert (payment.reference, payment.amount) == ("ACH-HX-1", Decimal("25.00"))


def test_an_htmx_post_with_errors_gets_its_form_back_alone_with_the_input(client, roles):
    world = _money_case(roles)
    case = world["case"]
    client.force_login(roles["car"])
    data = _payment_post(case, world["usd"], amount="-5", reference="ACH-KEEP-HX")
    before = _ledger(case)

    response = client.post(reverse("add_payment", args=[case.pk]), data, **HX)

    assert response.status_code == 200  # htmx swaps in a successful response only
    assert "HX-Redirect" not in response
    body = response.content.decode()
    assert "<h1" not in body
    assert body.count('<div id="money-form"') == 1
    assert "The amount must be positive" in body
    assert 'value="-5"' in body and 'value="ACH-KEEP-HX"' in body
    assert f'value="{data["idempotency_key"]}"' in body  # a resubmission stays one payment
    assert re.search(rf'<option value="{world["usd"].pk}"[^>]*selected', body)
    assert _forms(response).actions == [reverse("add_payment", args=[case.pk])]
    assert _ledger(case) == before


def test_a_refusal_by_the_service_comes_back_on_the_htmx_form(client, roles):
    world = _money_case(roles)
    case = world["case"]
    client.force_login(roles["car"])
    first = _payment_post(case, world["usd"], amount="20.00", reference="ACH-TWICE")
    assert client.post(reverse("add_payment", args=[case.pk]), first, **HX).status_code == 200
    before = _ledger(case)

    again = _payment_post(case, world["eur"], amount="20.00", reference="ACH-TWICE")
    response = client.post(reverse("add_payment", args=[case.pk]), again, **HX)

    assert response.status_code == 200
    assert "HX-Redirect" not in response
    assert "Payment reference ACH-TWICE is already recorded" in html.unescape(
        response.content.decode()
    )
    assert _ledger(case) == before


def test_without_javascript_a_post_with_errors_gets_the_case_page_with_that_form(client, roles):
    world = _money_case(roles)
    case = world["case"]
    client.force_login(roles["car"])

    response = client.post(
        reverse("void_payout", args=[case.pk]),
        {**_valid_post("void_payout", world), "reason": ""},
    )

    assert response.status_code == 400
    assert "<h1" in response.content.decode()
    page = response.content.decode()
    # The reason field is marked invalid with its message (only the void form is bound).
    reason = re.search(r'<textarea[^>]*name="[\w-]*reason"[^>]*>', page) or re.search(
        r'<input[^>]*name="[\w-]*reason"[^>]*>', page
    )
    assert "is-invalid" in reason.group(0)
    assert "This field is required." in page
    # The form with its errors is the only money form drawn, beside the step's.
    assert _case_forms(response) == [
        reverse("void_payout", args=[case.pk]),
        reverse("complete_step", args=[case.pk, 8]),
    ]


@pytest.mark.parametrize("action", MONEY_ACTIONS)
def test_every_action_answers_htmx_with_a_redirect_to_the_case_page(client, roles, action):
    world = _money_case(roles)
    case = world["case"]
    client.force_login(roles["car"])
    before = _ledger(case)

    response = client.post(reverse(action, args=[case.pk]), _valid_post(action, world), **HX)

    assert response.status_code == 200
    assert response["HX-Redirect"] == reverse("case_detail", args=[case.pk])
    assert _ledger(case) != before


# ---- who may open and post ----


def test_anonymous_is_sent_to_log_in(client, roles):
    world = _money_case(roles)
    url = _form_url(world["case"], "payment")
    for headers in ({}, HX):
        response = client.get(url, **headers)
        assert response.status_code == 302
        assert urlsplit(response["Location"]).path == reverse("login")


@pytest.mark.parametrize("name", sorted(MONEY_FORMS))
def test_a_cam_who_cannot_see_the_case_gets_404(client, roles, name):
    world = _money_case(roles)
    client.force_login(roles["cam2"])
    assert client.get(_form_url(world["case"], name), **HX).status_code == 404
    assert client.get(_form_url(world["case"], name)).status_code == 404


@pytest.mark.parametrize("name", sorted(MONEY_FORMS))
@pytest.mark.parametrize("username", NOT_CAR)
def test_who_sees_the_case_but_may_not_change_money_gets_403(client, roles, username, name):
    world = _money_case(roles)
    client.force_login(roles[username])
    for headers in ({}, HX):
        response = client.get(_form_url(world["case"], name), **headers)
        assert response.status_code == 403, (username, name, headers)
        action = reverse(MONEY_FORMS[name].action, args=[world["case"].pk])
        assert action not in response.content.decode()


@pytest.mark.parametrize("username", NOT_CAR)
def test_an_htmx_post_by_another_role_is_refused_and_changes_nothing(client, roles, username):
    world = _money_case(roles)
    case = world["case"]
    client.force_login(roles[username])
    before = _ledger(case)

    response = client.post(
        reverse("add_payment", args=[case.pk]), _valid_post("add_payment", world), **HX
    )

    assert response["HX-Redirect"] == reverse("case_detail", args=[case.pk])
    assert any("Only CAR can change what is paid or owed." in m for m in _messages(response))
    assert _ledger(case) == before


def test_car2_may_open_the_forms_too(client, roles):
    world = _money_case(roles)
    client.force_login(roles["car2"])
    for name in MONEY_FORMS:
        assert client.get(_form_url(world["case"], name), **HX).status_code == 200, name
