"""Bad input through the case pages: refused with a clear message, and nothing recorded."""

import datetime as dt
import html
import re
import uuid

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from offboarding.models import CaseEvent, EventKind
from partners.models import LicenceStatus
from payouts.models import Payment
from tests.step_posts import case_at, step_post

pytestmark = pytest.mark.django_db


def _messages(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


def _text(response):
    return html.unescape(response.content.decode())


def _field_errors(response, field):
    """The errors drawn under form field `field`, as the person reads them."""
    found = re.findall(
        rf'<p id="error_\d+_id_(?:\w+_)?{field}">(.*?)</p>', response.content.decode(), re.S
    )
    return [" ".join(html.unescape(re.sub(r"<[^>]+>", " ", e)).split()) for e in found]


def test_resignation_with_less_than_30_days_notice_is_refused(client, roles):
    case = case_at(3, roles)
    client.force_login(roles["cam"])
    notice = timezone.localdate()
    too_early = notice + dt.timedelta(days=29)
    data = step_post(case, 3) | {"requested_exit_date": too_early.isoformat()}

    response = client.post(reverse("complete_step", args=[case.pk, 3]), data)

    assert response.status_code == 400
    assert "30 days" in " ".join(_field_errors(response, "requested_exit_date"))
    page = _text(response)
    assert "30 days" in page
    # What the person entered is still in the form.
    assert f'value="{notice.isoformat()}"' in page
    assert f'value="{too_early.isoformat()}"' in page
    assert re.search(r'<input[^>]*name="notice_channel"[^>]*value="email"[^>]*checked', page)
    case.refresh_from_db()
    assert case.state == "step_3"
    assert case.events.count() == 2  # opened + step 1


def test_resignation_with_exactly_30_days_notice_is_accepted(client, roles):
    case = case_at(3, roles)
    client.force_login(roles["cam"])
    notice = timezone.localdate()
    data = step_post(case, 3) | {
        "requested_exit_date": (notice + dt.timedelta(days=30)).isoformat()
    }

    response = client.post(reverse("complete_step", args=[case.pk, 3]), data)

    assert response.status_code == 302
    case.refresh_from_db()
    assert case.state == "step_4"
    assert case.offboard_date == notice + dt.timedelta(days=30)


def test_legal_action_without_a_document_is_refused(client, roles):
    case = case_at(2, roles)
    client.force_login(roles["cam"])
    data = step_post(case, 2)
    del data["evidence"]

    response = client.post(reverse("complete_step", args=[case.pk, 2]), data)

    assert response.status_code == 400
    errors = _field_errors(response, "evidence")
    assert any("supporting documents" in e for e in errors)
    assert "supporting documents" in _text(response)
    case.refresh_from_db()
    assert case.state == "step_2"
    assert case.events.count() == 2


def test_step_6_with_no_active_membership_licence_says_so(client, roles):
    """Nothing to choose: the page says why the step cannot be completed yet."""
    case = case_at(6, roles)
    data = step_post(case, 6)
    case.partner.licences.filter(is_membership=True).update(status=LicenceStatus.SUSPENDED)
    client.force_login(roles["salesops"])

    response = client.post(reverse("complete_step", args=[case.pk, 6]), data)

    assert response.status_code == 400
    assert "no active $0 membership licence on record" in _text(response)
    case.refresh_from_db()
    assert case.state == "step_6"


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("abc", "Enter the amount as a positive decimal"),
        ("-5", "The amount must be positive"),
        ("0", "The amount must be positive"),
    ],
)
def test_bad_payment_amount_is_refused(client, roles, amount, message):
    case = case_at(7, roles)  # money on the table; move it to step 8 through the page
    client.force_login(roles["car"])
    client.post(reverse("complete_step", args=[case.pk, 7]), step_post(case, 7))
    case.refresh_from_db()
    assert case.state == "step_8"
    payout = case.outstanding_payouts().first()
    events = case.events.count()

    response = client.post(
        reverse("add_payment", args=[case.pk]),
        {
            "expected_state": case.state,
            "payout": payout.pk,
            "amount": amount,
            "paid_on": timezone.localdate().isoformat(),
            "reference": "ACH-1",
            "method": "ach",
            "idempotency_key": str(uuid.uuid4()),
        },
    )

    assert response.status_code == 400
    assert any(message in e for e in _field_errors(response, "amount"))
    assert message in _text(response)
    assert f'value="{amount}"' in _text(response)
    assert not Payment.objects.exists()
    assert case.events.count() == events
    payout.refresh_from_db()
    assert payout.status == "open"


def test_a_valid_payment_is_recorded(client, roles):
    """The counterpart of the refusals above: the same form with a good amount records."""
    case = case_at(7, roles)
    client.force_login(roles["car"])
    client.post(reverse("complete_step", args=[case.pk, 7]), step_post(case, 7))
    case.refresh_from_db()
    payout = case.outstanding_payouts().first()

    response = client.post(
        reverse("add_payment", args=[case.pk]),
        {
            "expected_state": case.state,
            "payout": payout.pk,
            "amount": "10.00",
            "paid_on": timezone.localdate().isoformat(),
            "reference": "ACH-1",
            "method": "ach",
            "idempotency_key": str(uuid.uuid4()),
        },
    )

    assert response.status_code == 302
    assert Payment.objects.get().amount == 10
    assert case.events.filter(kind=EventKind.PAYMENT_RECORDED).count() == 1


def test_stale_expected_state_is_told_the_case_moved_on(client, roles):
    case = case_at(4, roles)  # came from step 2
    client.force_login(roles["cam"])
    events = CaseEvent.objects.count()

    response = client.post(
        reverse("complete_step", args=[case.pk, 4]),
        step_post(case, 4, expected_state="step_2"),
    )

    assert response.status_code == 302
    assert response["Location"] == reverse("case_detail", args=[case.pk])
    assert any("moved on" in m for m in _messages(response))
    assert CaseEvent.objects.count() == events
    case.refresh_from_db()
    assert case.state == "step_4"


def test_form_of_an_earlier_step_is_told_the_case_moved_on(client, roles):
    case = case_at(4, roles)
    client.force_login(roles["cam"])
    events = CaseEvent.objects.count()

    response = client.post(
        reverse("complete_step", args=[case.pk, 2]),
        step_post(case, 2, expected_state="step_2"),
    )

    assert response.status_code == 302
    assert any("moved on" in m for m in _messages(response))
    assert CaseEvent.objects.count() == events
    case.refresh_from_db()
    assert case.state == "step_4"


@pytest.mark.parametrize("step", [3, 4, 5])
def test_double_submit_records_the_step_once(client, roles, step):
    case = case_at(step, roles)
    user = "salesops" if step == 5 else "cam"
    client.force_login(roles[user])
    url = reverse("complete_step", args=[case.pk, step])

    first = client.post(url, step_post(case, step))
    second = client.post(url, step_post(case, step))

    assert first.status_code == second.status_code == 302
    assert not any("moved on" in m for m in _messages(first))
    assert any("moved on" in m for m in _messages(second))
    assert case.events.filter(kind=EventKind.STEP_COMPLETED, step_number=step).count() == 1


def test_stale_withdraw_is_told_the_case_moved_on(client, roles):
    case = case_at(4, roles)
    client.force_login(roles["cam"])
    events = CaseEvent.objects.count()

    response = client.post(
        reverse("withdraw_case", args=[case.pk]),
        {"expected_state": "step_2", "reason": "Rescinded"},
    )

    assert response.status_code == 302
    assert any("moved on" in m for m in _messages(response))
    assert CaseEvent.objects.count() == events
    case.refresh_from_db()
    assert case.state == "step_4"
