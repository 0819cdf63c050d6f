"""Every branch of the process, clicked through by the people whose lanes it crosses.

Each journey logs in as each role in turn through the login page and asserts what that
person sees: where the swimlane stands, the inbox entry the next role gets, the errors on
bad input (with the input kept), and the partner record at the end.
"""

import datetime as dt
import re
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from offboarding.models import Case
from partners.models import PartnerStatus
from payouts.models import Payout
from tests.factories import CaseFactory, PartnerFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def iso(day: dt.date) -> str:
    return day.isoformat()


def open_case_from_partner_page(ui, partner_name, *, company: bool, shot: str | None = None):
    """As the partner's CAM: partner page → Start offboarding → step 1 → the case page."""
    ui.partner_page(partner_name)
    if shot:
        ui.shoot(shot)
    ui.page.get_by_role("link", name="Start offboarding").click()
    expect(ui.heading()).to_have_text(f"Start offboarding {partner_name}")
    ui.check()
    page = ui.page
    if company:
        page.get_by_label("The company asks the partner to leave").check()
        ui.field("Reason").select_option(label="Revenue minimum not met")
        ui.field("Channel").select_option(label="Internal review")
    else:
        page.get_by_label("The partner asked to leave").check()
        ui.field("Reason").select_option(label="Partner's business changed or closed")
        ui.field("Channel").select_option(label="Email")
    yesterday = timezone.localdate() - dt.timedelta(days=1)
    ui.field("Date the request was received").fill(iso(yesterday))
    page.get_by_role("button", name="Open the case").click()
    ui.message(f"Offboarding opened for {partner_name}.")
    ui.check()
    return ui.case_pk()


def test_voluntary_resignation_without_money_on_the_legacy_portal(ui, people):
    """1 → 3 → 4 → 5 → 6 → 7 (nothing owed) → 10 (legacy portal) → Done."""
    PartnerFactory(cam=people["cam"], display_name="Bluebird Accounting", legal_name="Bluebird LLC")
    today = timezone.localdate()

    ui.login("cam")
    expect(ui.page.get_by_text("No cases match.")).to_be_visible()
    ui.shoot("my-work-empty")
    pk = open_case_from_partner_page(
        ui, "Bluebird Accounting", company=False, shot="partner-page-active"
    )
    ui.expect_swimlane(done={1}, current=3, lane="Partner", skipped={2})
    ui.shoot("case-step-3")

    # Step 3 with too short a notice: refused with the rule, and the dates are still there.
    notice, too_soon = today - dt.timedelta(days=1), today + dt.timedelta(days=10)
    page = ui.page
    ui.field("Date the resignation notice was received").fill(iso(notice))
    page.get_by_label("Email", exact=True).check()
    ui.field("Requested exit date").fill(iso(too_soon))
    ui.field("Note").fill("Resignation email from the owner.")
    page.get_by_role("button", name="Complete step 3").click()
    ui.check()
    error = page.locator(".invalid-feedback, .errorlist").filter(has_text="30 days")
    expect(error).to_be_visible()
    expect(error).to_contain_text(f"exit date must be {iso(notice + dt.timedelta(days=30))}")
    expect(ui.field("Date the resignation notice was received")).to_have_value(iso(notice))
    expect(ui.field("Requested exit date")).to_have_value(iso(too_soon))
    expect(page.get_by_label("Email", exact=True)).to_be_checked()
    expect(ui.field("Note")).to_have_value("Resignation email from the owner.")
    ui.expect_swimlane(done={1}, current=3, lane="Partner", skipped={2})
    ui.shoot("case-step-3-error")

    exit_date = today + dt.timedelta(days=45)
    ui.field("Requested exit date").fill(iso(exit_date))
    ui.complete_step(3)
    ui.expect_swimlane(done={1, 3}, current=4, lane="CAM", skipped={2})

    page.get_by_label("Sales Ops knows about this offboarding").check()
    ui.complete_step(4)
    ui.expect_swimlane(done={1, 3, 4}, current=5, lane="Sales Ops", skipped={2})
    expect(page.get_by_text("Waiting for Sales Ops.")).to_be_visible()

    # Sales Ops: the step is in their inbox and their work list.
    ui.login("salesops")
    expect(page.get_by_role("link", name=f"#{pk}")).to_be_visible()
    ui.shoot("my-work-salesops")
    ui.inbox_entry("Step 5 · ")
    ui.shoot("inbox-salesops")
    ui.open_from_inbox("Bluebird Accounting")
    ui.expect_swimlane(done={1, 3, 4}, current=5, lane="Sales Ops", skipped={2})
    ui.shoot("case-step-5")
    for index, item in enumerate(("5A", "5B", "5C", "5D")):
        page.get_by_label(re.compile(rf"^\s*{item} ·")).check()
        ui.field("Reference").nth(index).fill(f"QB-TICKET-{item}")
    ui.complete_step(5)
    ui.expect_swimlane(done={1, 3, 4, 5}, current=6, lane="Sales Ops", skipped={2})
    page.get_by_label("Reseller Premier Membership (RPM-0)").check()
    ui.complete_step(6)
    ui.expect_swimlane(done={1, 3, 4, 5, 6}, current=7, lane="CAR", skipped={2})

    # CAR: nothing is owed, so 8 and 9 are skipped (Decision A: still to step 10).
    ui.login("car")
    ui.open_from_inbox("Step 7 · ")
    expect(page.get_by_text("Nothing open: no open commissions")).to_be_visible()
    page.get_by_label("No: nothing is owed").check()
    page.get_by_label("I have checked the open balance shown above").check()
    ui.complete_step(7)
    ui.expect_swimlane(done={1, 3, 4, 5, 6, 7}, current=10, lane="CAM", skipped={2, 8, 9})

    # The CAM confirms the portal the partner record names (Decision C): no other choice.
    ui.login("cam")
    ui.open_from_inbox("Step 10 · ")
    expect(page.get_by_label("Beta portal")).to_have_count(0)
    page.get_by_label("The partner is on the legacy portal, as its record says").check()
    ui.complete_step(10)
    ui.expect_swimlane(done={1, 3, 4, 5, 6, 7, 10}, skipped={2, 8, 9, 11, 12, 13})
    expect(page.locator("#case-state")).to_have_text("Done")
    expect(page.get_by_text(f"left the program on {iso(exit_date)}")).to_be_visible()
    ui.shoot("case-done")

    page.get_by_role("link", name="Partner record").click()
    ui.check()
    expect(ui.heading()).to_have_text("Bluebird Accounting")
    record = page.get_by_role("region", name="Partner record")
    expect(record).to_contain_text("Offboarded")
    expect(record).to_contain_text(iso(exit_date))
    expect(page.get_by_role("link", name="Start offboarding")).to_have_count(0)
    ui.shoot("partner-page-offboarded")
    assert Case.objects.get(pk=pk).partner.status == PartnerStatus.OFFBOARDED
    ui.assert_accessible()


def test_company_notice_and_the_overdue_badge(ui, people):
    """1 → 2 (no legal action: 30-day notice) → 4; a step left too long shows as overdue."""
    PartnerFactory(cam=people["cam"], display_name="Harbor Finance")
    waiting = CaseFactory(
        partner=PartnerFactory(cam=people["cam"], display_name="Delta Bookkeeping"),
        state="step_2",
        actors=people,
    )
    today = timezone.localdate()
    page = ui.page

    ui.login("cam")
    pk = open_case_from_partner_page(ui, "Harbor Finance", company=True)
    ui.expect_swimlane(done={1}, current=2, lane="CAM")

    # A notice dated tomorrow is refused; the answers stay as entered.
    tomorrow = today + dt.timedelta(days=1)
    page.get_by_label("No", exact=True).check()
    notice = ui.field("Date the 30-day notice was sent, or legal action was recorded")
    notice.fill(iso(tomorrow))
    page.get_by_role("button", name="Complete step 2").click()
    ui.check()
    expect(page.get_by_text("The notice date cannot be in the future.")).to_be_visible()
    expect(notice).to_have_value(iso(tomorrow))
    expect(page.get_by_label("No", exact=True)).to_be_checked()
    ui.expect_swimlane(done={1}, current=2, lane="CAM")

    notice.fill(iso(today - dt.timedelta(days=1)))
    ui.complete_step(2)
    ui.expect_swimlane(done={1, 2}, current=4, lane="CAM", skipped={3})
    offboard_date = today - dt.timedelta(days=1) + dt.timedelta(days=30)
    expect(page.locator(".case-facts")).to_contain_text(iso(offboard_date))
    ui.shoot("case-step-4")
    page.get_by_label("Sales Ops knows about this offboarding").check()
    ui.complete_step(4)
    ui.expect_swimlane(done={1, 2, 4}, current=5, lane="Sales Ops", skipped={3})

    # Nothing is overdue yet; then Sales Ops lets step 5 slip past its due time.
    ui.nav("Cases")
    expect(page.locator("main .badge", has_text="Overdue")).to_have_count(0)
    Case.objects.filter(pk=pk).update(step_due_at=timezone.now() - dt.timedelta(hours=3))

    # The manager sees every case; only Harbor's is flagged.
    ui.login("manager")
    ui.nav("Cases")
    expect(ui.heading()).to_have_text("Offboarding cases")
    late_row = page.get_by_role("row").filter(has_text="Harbor Finance")
    on_time_row = page.get_by_role("row").filter(has_text="Delta Bookkeeping")
    expect(late_row.locator(".badge", has_text="Overdue")).to_be_visible()
    expect(late_row).to_have_class(re.compile(r"\btable-danger\b"))
    expect(on_time_row).to_be_visible()
    expect(on_time_row.locator(".badge", has_text="Overdue")).to_have_count(0)
    ui.shoot("case-list-overdue")

    page.get_by_label("Overdue only").check()  # filters in place (htmx)
    expect(on_time_row).to_have_count(0)
    expect(late_row).to_be_visible()
    expect(page).to_have_url(re.compile(r"overdue=1"))
    ui.check()
    ui.shoot("case-list-overdue-only")

    late_row.get_by_role("link", name=f"#{pk}").click()
    ui.check()
    expect(page.locator("#case-state")).to_contain_text("Overdue")
    assert not Case.objects.get(pk=waiting.pk).is_overdue
    ui.assert_accessible()


def test_legal_action_with_an_uploaded_document(ui, people):
    """1 → 2 (legal action, with the court filing uploaded) → 5, skipping 3 and 4."""
    PartnerFactory(cam=people["cam"], display_name="Granite CPA Group")
    page = ui.page
    filing = b"%PDF-1.4\n% court filing for the browser test\n%%EOF\n"

    ui.login("cam")
    pk = open_case_from_partner_page(ui, "Granite CPA Group", company=True)
    ui.expect_swimlane(done={1}, current=2, lane="CAM")
    page.get_by_label("Yes", exact=True).check()
    notice = ui.field("Date the 30-day notice was sent, or legal action was recorded")
    yesterday = iso(timezone.localdate() - dt.timedelta(days=1))
    notice.fill(yesterday)

    # Legal action without its documents is refused; the answers stay.
    page.get_by_role("button", name="Complete step 2").click()
    ui.check()
    expect(page.get_by_text("Legal action needs its supporting documents")).to_be_visible()
    expect(page.get_by_label("Yes", exact=True)).to_be_checked()
    expect(notice).to_have_value(yesterday)

    ui.field("Evidence files").set_input_files(
        files=[{"name": "court-filing.pdf", "mimeType": "application/pdf", "buffer": filing}]
    )
    ui.complete_step(2)
    ui.expect_swimlane(done={1, 2}, current=5, lane="Sales Ops", skipped={3, 4})
    history = page.get_by_role("region", name="History")
    attachment = history.get_by_role("link", name=re.compile("court-filing.pdf"))
    expect(attachment).to_be_visible()
    with page.expect_download() as download:
        attachment.click()
    assert download.value.suggested_filename == "court-filing.pdf"
    assert Path(download.value.path()).read_bytes() == filing
    ui.shoot("case-legal-step-5")

    # Sales Ops is told although step 4 (the CAM's hand-off) was skipped.
    ui.login("salesops")
    ui.open_from_inbox("Step 5 · Update the partner record — Granite CPA Group")
    assert ui.case_pk() == pk
    ui.expect_swimlane(done={1, 2}, current=5, lane="Sales Ops", skipped={3, 4})
    expect(page.get_by_role("button", name="Complete step 5")).to_be_visible()
    ui.assert_accessible()


def test_money_on_the_table_paid_and_verified_by_another_car_member(ui, people):
    """7 (money on the table) → 8 (one payment, then the rest in full) → 9 (four eyes) → 10."""
    partner = PartnerFactory(
        cam=people["cam"], display_name="Evergreen Advisors", legal_name="Evergreen Advisors LLC"
    )
    case = CaseFactory(partner=partner, state="step_7", money=True, actors=people)
    usd = Payout.objects.get(partner=partner, currency="USD")
    today = iso(timezone.localdate())
    page = ui.page

    ui.login("car")
    ui.nav("CAR console")
    waiting = page.get_by_role("region", name="Cases waiting on money steps")
    row = waiting.get_by_role("row").filter(has_text="Evergreen Advisors")
    expect(row).to_contain_text("250.00 USD")
    expect(row).to_contain_text("99.99 EUR")
    ui.shoot("car-console-step-7")
    ui.open_from_inbox("Step 7 · Money on the table? — Evergreen Advisors")
    money = page.get_by_role("region", name="Money on the table")
    expect(money.get_by_role("row", name=re.compile("Open balance USD"))).to_contain_text(
        "250.00 USD"
    )
    expect(money.get_by_role("row", name=re.compile("Open balance EUR"))).to_contain_text(
        "99.99 EUR"
    )
    ui.shoot("case-step-7-money")

    # "Nothing is owed" while payouts are open is refused; the answers stay.
    page.get_by_label("No: nothing is owed").check()
    page.get_by_label("I have checked the open balance shown above").check()
    page.get_by_role("button", name="Complete step 7").click()
    ui.check()
    expect(page.get_by_text("'nothing is owed' is not possible")).to_be_visible()
    expect(page.get_by_label("No: nothing is owed")).to_be_checked()
    expect(page.get_by_label("I have checked the open balance shown above")).to_be_checked()
    page.get_by_label("Yes: open commissions, orders or payouts").check()
    ui.complete_step(7)
    ui.expect_swimlane(done={1, 2, 4, 5, 6, 7}, current=8, lane="CAR", skipped={3})

    # One payment on the USD payout, first with a bad amount.
    record = ui.money_form("Record a payment")
    record.get_by_label(re.compile(r"^\s*Payout\s*\*?\s*$")).select_option(str(usd.pk))
    record.get_by_label(re.compile(r"^\s*Amount paid")).fill("-5")
    record.get_by_label(re.compile(r"^\s*Paid on")).fill(today)
    record.get_by_label(re.compile(r"^\s*Payment reference")).fill("ACH-1001")
    record.get_by_role("button", name="Record payment").click()
    ui.check()
    record = page.locator("form", has=page.get_by_role("button", name="Record payment"))
    expect(record.get_by_text("The amount must be positive")).to_be_visible()
    expect(record.get_by_label(re.compile(r"^\s*Amount paid"))).to_have_value("-5")
    expect(record.get_by_label(re.compile(r"^\s*Paid on"))).to_have_value(today)
    expect(record.get_by_label(re.compile(r"^\s*Payment reference"))).to_have_value("ACH-1001")
    expect(record.get_by_label(re.compile(r"^\s*Payout\s*\*?\s*$"))).to_have_value(str(usd.pk))
    ui.shoot("case-step-8-payment-error")

    record.get_by_label(re.compile(r"^\s*Amount paid")).fill("100.00")
    record.get_by_role("button", name="Record payment").click()
    ui.message("Payment recorded.")
    ui.check()
    money = page.get_by_role("region", name="Money on the table")
    expect(money.get_by_role("row", name=re.compile(usd.reference))).to_contain_text("150.00 USD")
    expect(money).to_contain_text("100.00 USD on " + usd.reference)

    # The rest in one batch.
    batch = ui.money_form("Pay several in full")
    for checkbox in batch.get_by_role("checkbox").all():
        checkbox.check()
    batch.locator("[name=paid_on]").fill(today)
    batch.get_by_label(re.compile(r"^\s*Batch payment reference")).fill("BATCH-7")
    batch.get_by_role("button", name="Pay selected in full").click()
    ui.message("Payouts paid in full.")
    ui.check()
    expect(page.get_by_text("Nothing open: no open commissions")).to_be_visible()
    page.get_by_label("Every open and pending payout is paid or voided").check()
    ui.complete_step(8)
    ui.expect_swimlane(done={1, 2, 4, 5, 6, 7, 8}, current=9, lane="CAR", skipped={3})

    # Four eyes: the CAR member who paid cannot verify.
    expect(page.get_by_text("another CAR member must verify")).to_be_visible()
    expect(page.get_by_role("button", name="Complete step 9")).to_have_count(0)
    ui.shoot("case-step-9-paid-by-you")
    ui.nav("CAR console")
    expect(ui.heading()).to_have_text("CAR console")
    queue = page.get_by_role("region", name=re.compile("Verification queue"))
    expect(queue.get_by_role("listitem").filter(has_text="Evergreen Advisors")).to_contain_text(
        "You recorded payments: another CAR member must verify"
    )
    ui.shoot("car-console")
    queue.get_by_role("link", name="statement").click()
    ui.check()
    expect(ui.heading()).to_have_text(f"Final statement — {partner.legal_name}")
    totals = page.get_by_role("row", name=re.compile("Total USD"))
    expect(totals).to_contain_text("250.00")
    expect(page.get_by_role("row", name=re.compile(usd.reference))).to_contain_text("ACH-1001")
    ui.shoot("final-statement")
    ui.nav("Inbox")
    expect(page.locator("main li.list-group-item").filter(has_text="Step 9 ·")).to_have_count(0)

    # Another CAR member verifies.
    ui.login("car2")
    ui.inbox_entry("Step 9 · Verify the last payments — Evergreen Advisors")
    ui.shoot("inbox-car2")
    ui.nav("CAR console")
    queue = page.get_by_role("region", name=re.compile("Verification queue"))
    expect(queue.get_by_role("listitem").filter(has_text="Evergreen Advisors")).to_contain_text(
        "You can verify"
    )
    queue.get_by_role("link", name=re.compile("Evergreen Advisors")).click()
    ui.check()
    page.get_by_label("I verified every payout on the statement is paid").check()
    ui.complete_step(9)
    ui.expect_swimlane(done={1, 2, 4, 5, 6, 7, 8, 9}, current=10, lane="CAM", skipped={3})
    verified = (
        page.get_by_role("region", name="History")
        .get_by_role("listitem")
        .filter(has_text="Step 9 ·")
    )
    expect(verified).to_contain_text("Avery Patel")
    assert case.payments.count() == 3
    ui.assert_accessible()


def test_beta_portal_referral_links_and_removal(ui, people):
    """10 (beta portal) → 11 → 12 (links deactivated) → 13 (removal confirmed) → Done."""
    partner = PartnerFactory(cam=people["cam"], display_name="Kestrel Partners", beta=True)
    CaseFactory(partner=partner, state="step_10", actors=people)
    page = ui.page

    ui.login("cam")
    ui.open_from_inbox("Step 10 · Which partner portal? — Kestrel Partners")
    expect(page.get_by_label("Legacy portal")).to_have_count(0)
    page.get_by_label("The partner is on the beta portal, as its record says").check()
    ui.complete_step(10)
    ui.expect_swimlane(done={1, 2, 4, 5, 6, 7, 10}, current=11, lane="CAR", skipped={3, 8, 9})

    ui.login("car")
    ui.open_from_inbox("Step 11 · ")
    page.get_by_label("The portal admin is told the last payment is verified as paid").check()
    ui.complete_step(11)
    ui.expect_swimlane(
        done={1, 2, 4, 5, 6, 7, 10, 11}, current=12, lane="Portal admin", skipped={3, 8, 9}
    )

    ui.login("portaladmin")
    ui.open_from_inbox("Step 12 · Deactivate referral links — Kestrel Partners")
    expect(page.get_by_text("1 referral link(s) on record.")).to_be_visible()
    ui.shoot("case-step-12")
    page.get_by_label("Deactivate all of the partner's active referral links").check()
    ui.complete_step(12)
    ui.expect_swimlane(
        done={1, 2, 4, 5, 6, 7, 10, 11, 12}, current=13, lane="Portal admin", skipped={3, 8, 9}
    )
    page.get_by_label("Remove the partner from the program").check()
    ui.complete_step(13)
    ui.expect_swimlane(done={1, 2, 4, 5, 6, 7, 10, 11, 12, 13}, skipped={3, 8, 9})
    expect(page.locator("#case-state")).to_have_text("Done")

    page.get_by_role("link", name="Partner record").click()
    ui.check()
    expect(page.get_by_role("region", name="Referral links")).to_contain_text("Deactivated")
    record = page.get_by_role("region", name="Partner record")
    expect(record).to_contain_text("Offboarded")
    expect(record).to_contain_text("archived")

    ui.login("manager")
    ui.inbox_entry("Kestrel Partners is offboarded")
    ui.shoot("inbox-manager")
    ui.assert_accessible()


def test_withdrawal_leaves_the_partner_active(ui, people):
    """The CAM withdraws a voluntary case at step 4 with a reason; the partner is active."""
    partner = PartnerFactory(cam=people["cam"], display_name="Maple Street CPAs")
    case = CaseFactory(partner=partner, state="step_4", company=False, actors=people)
    page = ui.page

    ui.login("cam")
    page.get_by_role("link", name=f"#{case.pk}").click()  # from My work
    ui.check()
    ui.expect_swimlane(done={1, 3}, current=4, lane="CAM", skipped={2})

    withdraw = page.get_by_role("region", name="Withdraw this case")
    withdraw.get_by_role("button", name="Withdraw").click()
    ui.check()
    withdraw = page.get_by_role("region", name="Withdraw this case")
    expect(withdraw.get_by_text("This field is required.")).to_be_visible()
    ui.expect_swimlane(done={1, 3}, current=4, lane="CAM", skipped={2})

    reason = "Partner rescinded the resignation after a call."
    withdraw.get_by_label(re.compile(r"^\s*Why is the case withdrawn")).fill(reason)
    withdraw.get_by_role("button", name="Withdraw").click()
    ui.message("The case is withdrawn; the partner is active again.")
    ui.check()
    expect(page.locator("#case-state")).to_have_text("Withdrawn")
    expect(page.get_by_text(f"Withdrawn: {reason}")).to_be_visible()
    ui.expect_swimlane(done={1, 3}, cancelled={2, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13})
    expect(page.get_by_role("region", name="Withdraw this case")).to_have_count(0)
    ui.shoot("case-withdrawn")

    page.get_by_role("link", name="Partner record").click()
    ui.check()
    expect(page.get_by_role("region", name="Partner record")).to_contain_text("Active")
    expect(page.get_by_role("link", name="Start offboarding")).to_be_visible()
    expect(page.get_by_role("region", name="Offboarding cases")).to_contain_text("Withdrawn")

    ui.login("manager")
    ui.inbox_entry("Offboarding withdrawn for Maple Street CPAs")
    ui.assert_accessible()
