"""Issue 14's money holes, each with a test that failed before: idempotency keys replayed
with other arguments, amounts the ledger cannot hold, currencies without the ledger's
minor unit, and the payment guard from the moment a case knows the offboard date."""

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from offboarding import services as case_services
from offboarding.demo import request_data
from offboarding.money import services
from offboarding.money.idempotency import KeyReused
from offboarding.services import ActionRefused
from payouts.apps import check_configured_currencies
from payouts.models import Payment, Payout
from payouts.money import check_currencies
from tests.factories import PartnerFactory, PayoutFactory
from tests.test_car_pages import _messages, _money_case, _pay_in_full_post, _payment_post

pytestmark = pytest.mark.django_db


def _today():
    return timezone.localdate()


def _pay(roles, payout, *, key, amount="10.00", case=None, reference="ACH-IDEM"):
    return services.record_payment(
        actor=roles["car"],
        case_id=case.pk if case else None,
        payout_id=payout.pk,
        amount=Decimal(amount),
        paid_on=_today(),
        reference=reference,
        idempotency_key=key,
    )


# ---- 3. idempotency as payment systems do it ----


def test_a_key_replayed_with_the_same_arguments_returns_the_first_payment(roles):
    money = _money_case(roles)
    key = uuid.uuid4()
    first = _pay(roles, money["usd"], key=key, case=money["case"])
    again = _pay(roles, money["usd"], key=key, case=money["case"], amount="10.0")
    assert again == first
    assert Payment.objects.count() == 1


@pytest.mark.parametrize(
    "change",
    [{"amount": "20.00"}, {"payout": "eur"}, {"reference": "ACH-OTHER"}],
)
def test_a_key_replayed_with_other_arguments_is_refused_and_records_nothing(roles, change):
    """Before: the second request silently returned the first payment."""
    money = _money_case(roles)
    key = uuid.uuid4()
    _pay(roles, money["usd"], key=key, case=money["case"])
    payout = money[change.pop("payout", "usd")]
    with pytest.raises(KeyReused, match="already used for another payment"):
        _pay(roles, payout, key=key, case=money["case"], **change)
    assert Payment.objects.count() == 1
    assert Payout.objects.get(pk=money["eur"].pk).paid_amount == 0


def test_the_payment_page_refuses_a_reused_key_with_a_message(client, roles):
    money = _money_case(roles)
    case, usd, eur = money["case"], money["usd"], money["eur"]
    client.force_login(roles["car"])
    url = reverse("add_payment", args=[case.pk])
    post = _payment_post(case, usd)
    assert client.post(url, post).status_code == 302
    replay = client.post(url, post, follow=True)
    assert "Payment recorded." in _messages(replay)
    other = client.post(url, {**post, "payout": str(eur.pk), "amount": "5.00"})
    assert other.status_code == 400
    assert "already used for another payment" in other.content.decode()
    assert Payment.objects.count() == 1
    assert Payout.objects.get(pk=eur.pk).paid_amount == 0


def test_a_batch_key_replayed_with_another_selection_is_refused(client, roles):
    money = _money_case(roles)
    case, usd, eur = money["case"], money["usd"], money["eur"]
    client.force_login(roles["car"])
    url = reverse("pay_in_full", args=[case.pk])
    post = _pay_in_full_post(case, [usd])
    assert client.post(url, post).status_code == 302
    assert client.post(url, post).status_code == 302  # the same batch again: nothing new
    assert Payment.objects.count() == 1
    other = client.post(url, {**post, "payouts_to_pay": [str(usd.pk), str(eur.pk)]})
    assert other.status_code == 400
    assert "already used for another payment" in other.content.decode()
    assert Payout.objects.get(pk=eur.pk).paid_amount == 0
    assert Payment.objects.count() == 1


# ---- 4. money validated at the edge of every service ----


@pytest.mark.parametrize(
    ("amount", "currency", "message"),
    [
        ("0", "USD", "positive"),
        ("-5.00", "USD", "positive"),
        ("1000000000000.00", "USD", "more than the ledger holds"),
        ("10.50", "JPY", "no minor unit"),
        ("1.001", "USD", "more than two decimal places"),
    ],
)
def test_create_payout_refuses_amounts_the_ledger_cannot_hold(roles, amount, currency, message):
    """Before: zero and negative amounts reached the database's check (an IntegrityError),
    a 13-digit amount its numeric overflow, and 10.50 JPY was stored."""
    partner = PartnerFactory()
    with pytest.raises(ActionRefused, match=message):
        services.create_payout(
            actor=roles["car"],
            partner=partner,
            reference="PO-EDGE",
            description="Edge",
            amount=Decimal(amount),
            currency=currency,
            earned_on=_today(),
        )
    assert not Payout.objects.filter(reference="PO-EDGE").exists()


def test_a_whole_yen_amount_is_accepted(roles):
    payout = services.create_payout(
        actor=roles["car"],
        partner=PartnerFactory(),
        reference="PO-JPY",
        description="Yen",
        amount=Decimal("1500"),
        currency="JPY",
        earned_on=_today(),
    )
    assert payout.amount == Decimal("1500.00")


def test_a_payment_of_a_fraction_of_a_yen_is_refused(roles):
    payout = PayoutFactory(amount=Decimal("1500.00"), currency="JPY", earned_on=_today())
    with pytest.raises(ActionRefused, match="no minor unit"):
        _pay(roles, payout, key=uuid.uuid4(), amount="0.50")
    assert not Payment.objects.exists()


@pytest.mark.parametrize(("codes", "message"), [(["USD", "KWD"], "3 decimal"), (["XYZ"], "ISO")])
def test_a_currency_the_ledger_cannot_hold_is_refused_in_the_settings(codes, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        check_currencies(codes)
    with override_settings(PARTNEROPS_CURRENCIES=codes):
        (error,) = check_configured_currencies()
    assert message in error.msg


# ---- 2. the guard from the moment the date is known ----


def test_the_guard_applies_from_step_2_not_step_5(roles):
    """A case stuck at step 4 past its offboard date: before, the guard read the partner
    record's date, set only at step 5, and let this payment through."""
    partner = PartnerFactory(cam=roles["cam"])
    payout = PayoutFactory(partner=partner, earned_on=_today() - dt.timedelta(days=90))
    case = case_services.open_case(
        actor=roles["cam"],
        partner_id=partner.pk,
        data={
            "initiated_by": "company",
            "reason": "revenue_minimum",
            "reason_detail": "",
            "request_received_on": _today() - dt.timedelta(days=60),
            "request_channel": "internal_review",
        },
    )
    case_services.complete_step(
        actor=roles["cam"],
        case_id=case.pk,
        step_number=2,
        expected_state="step_2",
        data={"legal_action": False, "notice_date": _today() - dt.timedelta(days=45)},
    )
    case.refresh_from_db()
    assert case.state == "step_4" and case.offboard_date < _today()
    assert partner.__class__.objects.get(pk=partner.pk).offboard_date is None
    with pytest.raises(ActionRefused, match="needs an override"):
        _pay(roles, payout, key=uuid.uuid4(), amount="100.00")
    assert not Payment.objects.exists()


def _opened_60_days_ago(roles, partner):
    """A company-initiated case whose request came in long ago, so a notice sent 40 days
    ago (after the request, as step 2 requires) puts the offboard date in the past."""
    return case_services.open_case(
        actor=roles["cam"],
        partner_id=partner.pk,
        data=request_data(company=True, received_on=_today() - dt.timedelta(days=60)),
    )


def test_payments_already_after_a_late_recorded_notice_become_exceptions(roles):
    partner = PartnerFactory(cam=roles["cam"])
    payout = PayoutFactory(partner=partner, earned_on=_today() - dt.timedelta(days=90))
    payment = _pay(roles, payout, key=uuid.uuid4(), amount="100.00", reference="BEFORE-NOTICE")
    case = _opened_60_days_ago(roles, partner)
    case_services.complete_step(
        actor=roles["cam"],
        case_id=case.pk,
        step_number=2,
        expected_state="step_2",
        data={"legal_action": False, "notice_date": _today() - dt.timedelta(days=40)},
    )
    payment.refresh_from_db()
    assert payment.after_offboard_date is True


def test_a_withdrawn_case_lifts_the_guard(roles):
    partner = PartnerFactory(cam=roles["cam"])
    payout = PayoutFactory(partner=partner, earned_on=_today() - dt.timedelta(days=90))
    case = _opened_60_days_ago(roles, partner)
    case_services.complete_step(
        actor=roles["cam"],
        case_id=case.pk,
        step_number=2,
        expected_state="step_2",
        data={"legal_action": False, "notice_date": _today() - dt.timedelta(days=40)},
    )
    case_services.withdraw_case(
        actor=roles["cam"], case_id=case.pk, expected_state="step_4", reason="Rescinded"
    )
    payment = _pay(roles, payout, key=uuid.uuid4(), amount="100.00")
    assert payment.after_offboard_date is False


def test_the_ledger_import_refuses_a_fraction_of_a_yen_with_its_line():
    from offboarding.money.importers import ImportRejected, import_csv

    partner = PartnerFactory()
    content = (
        "partner_record_id,reference,amount,currency,description,earned_on,status\n"
        f"{partner.record_id},PO-YEN-1,10.50,JPY,Yen,{_today().isoformat()},open\n"
    )
    with pytest.raises(ImportRejected) as rejected:
        import_csv("payouts", content)
    ((line, message),) = rejected.value.report.errors
    assert line == 2 and "no minor unit" in message
    assert not Payout.objects.filter(reference="PO-YEN-1").exists()
