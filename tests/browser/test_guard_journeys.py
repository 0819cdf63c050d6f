"""Issue 14's promise through the browser, as each role does it: a payment after the offboard
date needs an override a second CAR user approves (Decision D), and step 10 follows the
partner record, which Sales Ops corrects (Decision C)."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from offboarding.models import Case
from partners.models import Partner, ReferralLink
from payouts.models import GuardOverride, Payment, Payout
from tests.factories import CaseFactory, PartnerFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _payment_form(page):
    return page.locator("form[action$='/payments/']")


def _fill_payment(form, payout, *, reason=""):
    form.get_by_label("Payout").select_option(str(payout.pk))
    form.get_by_label("Amount paid").fill(str(payout.remaining))
    form.get_by_label("Paid on").fill(timezone.localdate().isoformat())
    form.get_by_label("Payment reference").fill("ACH-LATE-1")
    form.get_by_label("Override reason (only after the offboard date)").fill(reason)
    form.get_by_role("button", name="Record payment").click()


def test_a_late_payment_is_asked_for_approved_by_a_second_car_user_then_recorded(ui, people):
    partner = PartnerFactory(cam=people["cam"], display_name="Heron Resellers")
    case = CaseFactory(state="step_8", money=True, actors=people, partner=partner)
    Case.objects.filter(pk=case.pk).update(
        offboard_date=timezone.localdate() - dt.timedelta(days=5)
    )
    payout = Payout.objects.get(partner=partner, currency="USD")
    page = ui.page

    # CAR (the maker) tries without a reason, then asks for the override.
    ui.login("car")
    ui.case(case.pk)
    ui.money_form("Record a payment")
    _fill_payment(_payment_form(page), payout)
    expect(page.get_by_text("Give a reason to ask a second CAR user").first).to_be_visible()
    _fill_payment(_payment_form(page), payout, reason="Earned in Q3; AP paid it late")
    ui.message("waiting for another CAR user's approval")
    assert not Payment.objects.exists()
    # The maker cannot approve their own request.
    expect(page.get_by_text("You asked for it: another CAR user decides.")).to_be_visible()

    # The second CAR user (the checker) approves on the CAR console.
    ui.login("car2")
    ui.nav("CAR console")
    overrides = page.locator("section[aria-labelledby='overrides-heading']")
    expect(overrides).to_contain_text("Heron Resellers")
    expect(overrides).to_contain_text("Earned in Q3; AP paid it late")
    overrides.get_by_role("button", name="Approve").click()
    ui.message("Override approved")

    # The maker records exactly what was approved.
    ui.login("car")
    ui.case(case.pk)
    ui.money_form("Record a payment")
    _fill_payment(_payment_form(page), payout)
    ui.message("Payment recorded.")
    payment = Payment.objects.get()
    assert payment.amount == Decimal("250.00")
    assert payment.override.approved_by == people["car2"]
    assert payment.after_offboard_date is True
    assert GuardOverride.objects.get().status == "used"

    # The exceptions report lists it.
    ui.open("/reports/payments-after-offboard/")
    expect(page.locator("main")).to_contain_text("ACH-LATE-1")


def test_step_10_follows_the_record_which_sales_ops_corrects(ui, people):
    partner = PartnerFactory(cam=people["cam"], display_name="Wren Systems")
    ReferralLink.objects.create(
        partner=partner, code="wren-1", target_url="https://example.com/r/wren"
    )
    case = CaseFactory(state="step_10", actors=people, partner=partner)
    page = ui.page

    # The record says legacy, but a referral link is live: Done is refused, and says why.
    ui.login("cam")
    ui.case(case.pk)
    expect(page.get_by_label("Beta portal")).to_have_count(0)
    page.get_by_label("The partner is on the legacy portal, as its record says").check()
    page.get_by_role("button", name="Complete step 10").click()
    ui.message("referral link")
    assert Case.objects.get(pk=case.pk).state == "step_10"
    assert ReferralLink.objects.get(code="wren-1").status == "active"

    # Sales Ops corrects the record, with the reason, on the case page.
    ui.login("salesops")
    ui.case(case.pk)
    correction = page.locator("form[action$='/partner-portal/']")
    correction.get_by_label("Beta portal").check()
    correction.get_by_label("Why is the record wrong?").fill("Moved to the beta portal in May")
    correction.get_by_role("button", name="Correct the record").click()
    ui.message("portal is corrected")
    assert Partner.objects.get(pk=partner.pk).portal == "beta"
    expect(page.locator(".history")).to_contain_text("Partner record corrected")

    # The CAM's step 10 now follows the corrected record to the portal admin's steps.
    ui.login("cam")
    ui.case(case.pk)
    page.get_by_label("The partner is on the beta portal, as its record says").check()
    ui.complete_step(10)
    assert Case.objects.get(pk=case.pk).state == "step_11"
