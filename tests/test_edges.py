"""Edges (issue 15, item 6): a body in a charset we do not read, a body larger than we
accept, a date far outside any real one — each a 400 or 413 with a message, never a 500,
and nothing stored. And the input checks read a form only after CSRF and login."""

import datetime as dt
import html
import re
import uuid
from unittest import mock

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from offboarding import services
from offboarding.models import Case
from offboarding.money.services import record_payment
from offboarding.step_rules import EARLIEST_DATE, LATEST_DATE, date_window_problem
from payouts.models import Payment
from tests.factories import PartnerFactory, PayoutFactory
from tests.step_posts import case_at, step_post

pytestmark = pytest.mark.django_db

FAR_DATES = ("0001-01-01", "9999-12-31", "1999-12-31", "2101-01-01")
WINDOW_MESSAGE = "outside the dates PartnerOps accepts (2000-01-01 to 2100-12-31)"


def _text(response) -> str:
    # filesizeformat writes a non-breaking space between the figure and its unit.
    return response.content.decode().replace("\xa0", " ")


def _field_errors(response, field):
    """The errors drawn under form field `field`, as the person reads them."""
    found = re.findall(
        rf'<p id="error_\d+_id_(?:\w+_)?{field}">(.*?)</p>', response.content.decode(), re.S
    )
    return [" ".join(html.unescape(re.sub(r"<[^>]+>", " ", e)).split()) for e in found]


# ---- charsets ----


def _withdraw_body(case) -> bytes:
    return f"expected_state={case.state}&reason=Changed+their+mind".encode()


@pytest.mark.parametrize(
    "charset",
    # latin-9: no Python codec has that name; base64, rot13, zlib: codecs, but not text ones
    # (Django kept them and failed with a 500 decoding a multipart form); idna: a text codec
    # that cannot replace bad bytes; latin9 and utf-16: real text codecs, not what we read.
    # utf8: an alias Django itself refuses for URL-encoded forms, with a bare 400.
    ["latin-9", "base64", "rot13", "zlib", "idna", "punycode", "latin9", "utf-16", "utf8", "x"],
)
@pytest.mark.parametrize("form_type", ["application/x-www-form-urlencoded", "multipart"])
def test_a_body_in_another_charset_is_a_400_that_says_so(client, roles, charset, form_type):
    case = case_at(4, roles)
    client.force_login(roles["cam"])
    if form_type == "multipart":
        body = (
            b'--XX\r\nContent-Disposition: form-data; name="reason"\r\n\r\n\xa4 caf\xe9\r\n'
            b'--XX\r\nContent-Disposition: form-data; name="expected_state"\r\n\r\nstep_4\r\n'
            b"--XX--\r\n"
        )
        content_type = f"multipart/form-data; boundary=XX; charset={charset}"
    else:
        body, content_type = _withdraw_body(case), f"{form_type}; charset={charset}"

    # generic(): the client's post() would re-encode the body into the charset itself.
    response = client.generic(
        "POST", reverse("withdraw_case", args=[case.pk]), body, content_type=content_type
    )

    assert response.status_code == 400
    assert f"charset “{charset}”" in _text(response) and "UTF-8" in _text(response)
    case.refresh_from_db()
    assert case.state == "step_4"


@pytest.mark.parametrize("charset", ["utf-8", "UTF-8", "Utf-8"])
def test_utf8_is_read(client, roles, charset):
    case = case_at(4, roles)
    client.force_login(roles["cam"])
    response = client.generic(
        "POST",
        reverse("withdraw_case", args=[case.pk]),
        _withdraw_body(case),
        content_type=f"application/x-www-form-urlencoded; charset={charset}",
    )
    assert response.status_code == 302
    case.refresh_from_db()
    assert case.state == "withdrawn"


@pytest.mark.parametrize("body", [b"reason=caf\xe9", b"reason=caf%E9", b"reason=%FF%FE"])
def test_a_form_whose_bytes_are_not_utf8_is_a_400(client, roles, body):
    case = case_at(4, roles)
    client.force_login(roles["cam"])
    response = client.generic(
        "POST",
        reverse("withdraw_case", args=[case.pk]),
        b"expected_state=step_4&" + body,
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 400
    assert "not valid UTF-8" in _text(response)
    case.refresh_from_db()
    assert case.state == "step_4"


def _login_client():
    """An anonymous browser that has the login page, its CSRF cookie and token."""
    browser = Client(enforce_csrf_checks=True)
    page = browser.get(reverse("login"))
    assert page.status_code == 200
    return browser, browser.cookies["csrftoken"].value


def test_the_login_form_in_another_charset_is_a_400(db):
    browser, token = _login_client()
    response = browser.generic(
        "POST",
        reverse("login"),
        f"csrfmiddlewaretoken={token}&username=a&password=b".encode(),
        content_type="multipart/form-data; boundary=XX; charset=base64",
    )
    assert response.status_code == 400
    assert "UTF-8" in _text(response)


def test_a_nul_in_the_login_form_is_a_400_once_csrf_has_accepted_it(db):
    get_user_model().objects.create_user("someone", password="a-long-password-1")
    browser, token = _login_client()
    form = {"username": "some\x00one", "password": "a-long-password-1"}

    without_token = browser.post(reverse("login"), form)
    assert without_token.status_code == 403  # CSRF answers first; the form is not checked

    response = browser.post(reverse("login"), {**form, "csrfmiddlewaretoken": token})
    assert response.status_code == 400
    assert "NUL character (%00) in “username”" in _text(response)


def test_an_anonymous_form_is_not_checked_before_login(client, roles):
    """A page that needs a login sends an anonymous POST to the login page: the form's
    content (a NUL here) is not looked at."""
    case = case_at(4, roles)
    response = client.post(
        reverse("withdraw_case", args=[case.pk]),
        {"expected_state": "step_4\x00", "reason": "x"},
    )
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


# ---- size ----


class Tripwire:
    """A request body that records every attempt to read it."""

    def __init__(self):
        self.reads = 0

    def read(self, *args):
        self.reads += 1
        return b""

    def readline(self, *args):
        self.reads += 1
        return b""


def test_a_huge_content_length_is_refused_before_the_body_is_read(client, roles):
    case = case_at(2, roles)
    client.force_login(roles["cam"])
    body = Tripwire()
    with mock.patch("offboarding.views.selectors.case_detail") as view_reached:
        response = client.generic(
            "POST",
            reverse("complete_step", args=[case.pk, 2]),
            b"",
            content_type="multipart/form-data; boundary=XX",
            CONTENT_LENGTH=str(200 * 1024 * 1024),
            **{"wsgi.input": body},
        )

    assert response.status_code == 413
    assert body.reads == 0
    assert not view_reached.called
    text = _text(response)
    assert "This submission is too large" in text
    assert "It is 200.0 MB" in text and "Nothing was read or saved" in text
    assert response["Connection"] == "close"
    case.refresh_from_db()
    assert case.state == "step_2"


def test_an_upload_over_the_request_limit_is_a_413_and_one_under_it_goes_through(
    client, roles, settings
):
    settings.REQUEST_MAX_BYTES = 4000
    case = case_at(2, roles)
    client.force_login(roles["cam"])
    url = reverse("complete_step", args=[case.pk, 2])

    big = step_post(case, 2)
    big["evidence"] = SimpleUploadedFile("big.pdf", b"%PDF-1.4" + b"x" * 5000, "application/pdf")
    response = client.post(url, big)
    assert response.status_code == 413
    assert "at most 3.9 KB in one submission" in _text(response)
    case.refresh_from_db()
    assert case.state == "step_2"

    response = client.post(url, step_post(case, 2))  # its small PDF fits
    assert response.status_code == 302
    case.refresh_from_db()
    assert case.state != "step_2"


@pytest.mark.parametrize("length", ["lots", "-1"])
def test_a_content_length_that_is_not_a_size_is_a_400(client, roles, length):
    client.force_login(roles["cam"])
    response = client.generic(
        "POST", reverse("my_work"), b"", content_type="text/plain", CONTENT_LENGTH=length
    )
    assert response.status_code == 400
    assert "Content-Length" in _text(response)


def test_the_request_limit_holds_at_least_a_whole_evidence_file(settings):
    assert settings.REQUEST_MAX_BYTES >= settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    assert settings.DATA_UPLOAD_MAX_MEMORY_SIZE > settings.EVIDENCE_MAX_BYTES


# ---- dates ----


def test_the_window_is_2000_to_2100():
    assert (dt.date(2000, 1, 1), dt.date(2100, 12, 31)) == (EARLIEST_DATE, LATEST_DATE)
    assert date_window_problem(EARLIEST_DATE) == date_window_problem(LATEST_DATE) == ""
    assert date_window_problem(None) == ""
    assert "0001-01-01" in date_window_problem(dt.date(1, 1, 1), "The notice date")
    assert date_window_problem(dt.date(1999, 12, 31)) and date_window_problem(dt.date(2101, 1, 1))


@pytest.mark.parametrize("far", FAR_DATES)
def test_start_offboarding_refuses_a_far_request_date(client, roles, far):
    partner = PartnerFactory(cam=roles["cam"])
    client.force_login(roles["cam"])
    response = client.post(
        reverse("start_offboarding", args=[partner.pk]),
        {
            "initiated_by": "company",
            "reason": "revenue_minimum",
            "request_received_on": far,
            "request_channel": "internal_review",
        },
    )
    assert response.status_code == 400
    assert WINDOW_MESSAGE in _text(response)
    assert far in _text(response)
    assert not Case.objects.filter(partner=partner).exists()
    partner.refresh_from_db()
    assert partner.status == "active"


@pytest.mark.parametrize("far", FAR_DATES)
@pytest.mark.parametrize(
    ("step", "field"), [(2, "notice_date"), (3, "notice_date"), (3, "requested_exit_date")]
)
def test_a_step_refuses_a_far_date(client, roles, far, step, field):
    case = case_at(step, roles)
    events = case.events.count()
    client.force_login(roles["cam"])
    response = client.post(
        reverse("complete_step", args=[case.pk, step]), {**step_post(case, step), field: far}
    )
    assert response.status_code == 400
    assert WINDOW_MESSAGE in _text(response)
    assert _field_errors(response, field)
    case.refresh_from_db()
    assert case.state == f"step_{step}" and case.events.count() == events
    assert case.notice_date is None and case.requested_exit_date is None


def _case_with_open_payout(client, roles):
    case = case_at(7, roles)
    client.force_login(roles["car"])
    client.post(reverse("complete_step", args=[case.pk, 7]), step_post(case, 7))
    case.refresh_from_db()
    assert case.state == "step_8"
    return case, case.outstanding_payouts().first()


@pytest.mark.parametrize("far", ["0001-01-01", "1999-12-31"])
def test_a_payment_refuses_a_far_date(client, roles, far):
    case, payout = _case_with_open_payout(client, roles)
    events = case.events.count()
    response = client.post(
        reverse("add_payment", args=[case.pk]),
        {
            "expected_state": case.state,
            "payout": payout.pk,
            "amount": "10.00",
            "paid_on": far,
            "reference": "ACH-1",
            "method": "ach",
            "idempotency_key": str(uuid.uuid4()),
        },
    )
    assert response.status_code == 400
    assert WINDOW_MESSAGE in _text(response)
    assert not Payment.objects.exists() and case.events.count() == events


def test_pay_in_full_refuses_a_far_date(client, roles):
    case, payout = _case_with_open_payout(client, roles)
    response = client.post(
        reverse("pay_in_full", args=[case.pk]),
        {
            "expected_state": case.state,
            "payouts_to_pay": [payout.pk],
            "paid_on": "0001-01-01",
            "method": "ach",
            "batch_reference": "BATCH-1",
            "idempotency_key": str(uuid.uuid4()),
        },
    )
    assert response.status_code == 400
    assert WINDOW_MESSAGE in _text(response)
    assert not Payment.objects.exists()


# The services refuse the same, whoever calls them (admin, a command, a task).


def test_open_case_refuses_a_far_date(roles):
    partner = PartnerFactory(cam=roles["cam"])
    data = {
        "initiated_by": "company",
        "reason": "revenue_minimum",
        "reason_detail": "",
        "request_received_on": dt.date(1, 1, 1),
        "request_channel": "internal_review",
    }
    with pytest.raises(services.ActionRefused, match="0001-01-01 is outside the dates"):
        services.open_case(actor=roles["cam"], partner_id=partner.pk, data=data)
    assert not Case.objects.filter(partner=partner).exists()


def test_complete_step_refuses_a_far_exit_date(roles):
    case = case_at(3, roles)
    today = timezone.localdate()
    data = {
        "notice_date": today,
        "notice_channel": "email",
        "requested_exit_date": dt.date(9999, 12, 31),  # 30 days later would overflow
    }
    with pytest.raises(services.ActionRefused, match="Requested exit date 9999-12-31"):
        services.complete_step(
            actor=roles["cam"],
            case_id=case.pk,
            step_number=3,
            expected_state=case.state,
            data=data,
        )
    case.refresh_from_db()
    assert case.state == "step_3"


def test_record_payment_refuses_a_far_date(roles):
    payout = PayoutFactory()
    with pytest.raises(services.ActionRefused, match="The payment date 0001-01-01"):
        record_payment(
            actor=roles["car"],
            payout_id=payout.pk,
            amount=payout.amount,
            paid_on=dt.date(1, 1, 1),
            reference="ACH-FAR",
        )
    assert not Payment.objects.exists()
