"""The ledger's money rules (issue 4): exact decimal money, the open balance and the final
statement to the cent per currency, steps 7-9, idempotent and never-overpaid payments,
four eyes on verification, and the payment guard after the offboard date."""

import datetime as dt
import uuid
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone

from notifications.models import Notification, NotificationKind
from offboarding import services
from offboarding.demo import seed, step_data
from offboarding.models import CaseEvent, EventKind
from offboarding.money.overrides import OverrideRequested, approve_override, refuse_override
from offboarding.money.services import (
    accrue_commission,
    create_payout,
    pay_in_full,
    record_payment,
    resolve_order,
    roll_up_commissions,
    void_payout,
)
from offboarding.services import ActionRefused
from offboarding.tasks import report_payments_after_offboard
from partners.models import Partner
from payouts.models import (
    Commission,
    CommissionStatus,
    GuardOverride,
    Order,
    OrderStatus,
    Payment,
    Payout,
    PayoutStatus,
)
from payouts.money import to_money
from payouts.selectors import final_statement, open_balance, payments_after_offboard_date
from tests.factories import CaseFactory, PartnerFactory, PayoutFactory
from tests.race import race

pytestmark = pytest.mark.django_db

D = Decimal


# ---------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------


LOCAL = ZoneInfo(settings.TIME_ZONE)


def today():
    return timezone.localdate()


def days_ago(n):
    return today() - dt.timedelta(days=n)


def reload(obj):
    return type(obj).objects.get(pk=obj.pk)


def case_at(roles, state, partner=None):
    partner = partner or PartnerFactory(cam=roles["cam"])
    return CaseFactory(partner=partner, state=state, actors=roles)


def complete(case, actor, data=None):
    return services.complete_step(
        actor=actor,
        case_id=case.pk,
        step_number=case.current_step.number,
        expected_state=case.state,
        data=step_data(case) if data is None else data,
    )


def pay(actor, payout, *, case=None, amount=None, reference=None, paid_on=None, **kwargs):
    return record_payment(
        actor=actor,
        case_id=case.pk if case else None,
        payout_id=payout.pk,
        amount=payout.amount if amount is None else amount,
        paid_on=paid_on or today(),
        reference=reference or f"ACH-{payout.reference}",
        **kwargs,
    )


def pay_with_override(roles, payout, *, override_reason="Earned before the offboard date", **kw):
    """Decision D's path: CAR asks, the second CAR user approves, CAR records."""
    with pytest.raises(OverrideRequested):
        pay(roles["car"], payout, override_reason=override_reason, **kw)
    override = GuardOverride.objects.filter(payout=payout, status="pending").get()
    approve_override(actor=roles["car2"], override_id=override.pk)
    return pay(roles["car"], payout, **kw)


def commission(partner, amount, currency="USD", *, status=CommissionStatus.OPEN, ref=None):
    return Commission.objects.create(
        partner=partner,
        source="portal",
        reference=ref or f"CM-{uuid.uuid4().hex[:10]}",
        period_start=days_ago(90),
        period_end=days_ago(60),
        earned_on=days_ago(55),
        amount=D(amount),
        currency=currency,
        status=status,
    )


def order(partner, amount, currency="USD", *, status=OrderStatus.OPEN):
    return Order.objects.create(
        partner=partner,
        reference=f"OR-{uuid.uuid4().hex[:10]}",
        ordered_on=days_ago(20),
        amount=D(amount),
        currency=currency,
        status=status,
    )


def ledger_state():
    return (
        list(Payment.objects.order_by("pk").values_list("pk", "amount", "paid_on")),
        list(Payout.objects.order_by("pk").values_list("pk", "status", "paid_amount")),
        list(Commission.objects.order_by("pk").values_list("pk", "status", "payout_id")),
        list(Order.objects.order_by("pk").values_list("pk", "status")),
        GuardOverride.objects.count(),
        CaseEvent.objects.count(),
    )


# ---------------------------------------------------------------------------------------
# Money is a Decimal with two places; floats are refused
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [1.1, 0.1 + 0.2, 100.0, True])
def test_to_money_refuses_floats_and_booleans(value):
    with pytest.raises(TypeError):
        to_money(value)


@pytest.mark.parametrize("value", ["1.234", D("0.001"), "12.345", D("99.999")])
def test_to_money_refuses_more_than_two_decimal_places(value):
    with pytest.raises(ValidationError, match="more than two decimal places"):
        to_money(value)


@pytest.mark.parametrize("value", ["abc", "", "NaN", "Infinity", "1,50"])
def test_to_money_refuses_text_that_is_not_an_amount(value):
    with pytest.raises(ValidationError):
        to_money(value)


@pytest.mark.parametrize(
    "value, expected", [("12.5", "12.50"), (7, "7.00"), (D("0.10"), "0.10"), ("-3.2", "-3.20")]
)
def test_to_money_keeps_exact_cents(value, expected):
    amount = to_money(value)
    assert isinstance(amount, Decimal)
    assert str(amount) == expected


def test_a_money_field_refuses_a_float_on_save(roles):
    partner = PartnerFactory()
    with pytest.raises(TypeError, match="never a float"), transaction.atomic():
        Payout.objects.create(
            partner=partner,
            reference="PO-FLOAT",
            description="Float",
            amount=1.1,
            currency="USD",
            earned_on=days_ago(5),
        )
    assert not Payout.objects.filter(reference="PO-FLOAT").exists()
    payout = PayoutFactory(partner=partner, amount=D("10.00"))
    with pytest.raises(TypeError, match="never a float"), transaction.atomic():
        Payout.objects.filter(pk=payout.pk).update(paid_amount=0.5)
    payout.amount = 2.5
    with pytest.raises(TypeError, match="never a float"), transaction.atomic():
        payout.save()
    assert reload(payout).amount == D("10.00") and reload(payout).paid_amount == D("0.00")


def test_a_money_field_refuses_a_float_and_three_decimals_in_validation():
    payout = PayoutFactory.build(partner=PartnerFactory(), amount=1.1)
    with pytest.raises(ValidationError) as error:
        payout.full_clean()
    assert "amount" in error.value.message_dict
    payout.amount = D("1.005")
    with pytest.raises(ValidationError) as error:
        payout.full_clean()
    assert "amount" in error.value.message_dict


@pytest.mark.parametrize("amount", [1.1, D("1.005"), "12.345"])
def test_services_refuse_floats_and_sub_cent_amounts(roles, amount):
    partner = PartnerFactory()
    payout = PayoutFactory(partner=partner, amount=D("50.00"))
    before = ledger_state()
    with pytest.raises(ActionRefused, match="positive decimal"):
        pay(roles["car"], payout, amount=amount)
    with pytest.raises((TypeError, ValidationError, ActionRefused)):
        accrue_commission(
            actor=roles["car"],
            partner=partner,
            source="portal",
            reference="CM-SUBCENT",
            amount=amount,
            currency="USD",
            period_start=days_ago(40),
            period_end=days_ago(10),
            earned_on=days_ago(5),
        )
    with pytest.raises((TypeError, ValidationError, ActionRefused)):
        create_payout(
            actor=roles["car"],
            partner=partner,
            reference="PO-SUBCENT",
            description="Sub-cent",
            amount=amount,
            currency="USD",
            earned_on=days_ago(5),
        )
    assert ledger_state() == before


# ---------------------------------------------------------------------------------------
# The open balance: totals per currency, to the cent
# ---------------------------------------------------------------------------------------


def test_open_balance_totals_each_currency_to_the_cent(roles):
    partner = PartnerFactory(cam=roles["cam"])
    car = roles["car"]
    # USD: payouts 0.10 + 0.20 (0.30000000000000004 in binary floats), one partly paid
    usd_a = PayoutFactory(partner=partner, amount=D("0.10"), earned_on=days_ago(30))
    usd_b = PayoutFactory(partner=partner, amount=D("0.20"), earned_on=days_ago(29))
    usd_c = PayoutFactory(partner=partner, amount=D("1000.10"), earned_on=days_ago(28))
    pay(car, usd_c, amount=D("999.90"), reference="ACH-C1")  # 0.20 remains
    # EUR: one partly paid payout
    eur_a = PayoutFactory(partner=partner, amount=D("10.00"), currency="EUR")
    pay(car, eur_a, amount=D("3.33"), reference="SEPA-A1")  # 6.67 remains
    # Settled payouts do not count.
    PayoutFactory(partner=partner, amount=D("500.00"), status=PayoutStatus.PAID)
    PayoutFactory(partner=partner, amount=D("70.00"), status="void", void_reason="Dup")
    # Commissions and orders: only the open ones count.
    cm_usd = commission(partner, "0.10")
    cm_eur = commission(partner, "0.70", "EUR")
    commission(partner, "9.99", status=CommissionStatus.VOID)
    commission(partner, "8.88", status=CommissionStatus.IN_PAYOUT)
    or_usd = order(partner, "0.20")
    or_gbp = order(partner, "0.01", "GBP")
    order(partner, "5.00", status=OrderStatus.CLOSED)
    order(partner, "6.00", status=OrderStatus.CANCELLED)
    # Another partner's money is not this partner's balance.
    PayoutFactory(amount=D("1.00"))

    balance = open_balance(partner)

    assert not balance.is_empty
    assert balance.totals == {"EUR": D("7.37"), "GBP": D("0.01"), "USD": D("0.80")}
    assert all(isinstance(total, Decimal) for total in balance.totals.values())
    assert {p.pk for p in balance.payouts} == {usd_a.pk, usd_b.pk, usd_c.pk, eur_a.pk}
    assert {c.pk for c in balance.commissions} == {cm_usd.pk, cm_eur.pk}
    assert {o.pk for o in balance.orders} == {or_usd.pk, or_gbp.pk}
    data = balance.as_event_data()
    assert data["totals"] == {"EUR": "7.37", "GBP": "0.01", "USD": "0.80"}
    remaining = {line["reference"]: line["remaining"] for line in data["payouts"]}
    assert remaining == {
        usd_a.reference: "0.10",
        usd_b.reference: "0.20",
        usd_c.reference: "0.20",
        eur_a.reference: "6.67",
    }


def test_open_balance_of_a_partner_with_nothing_open_is_empty():
    partner = PartnerFactory()
    PayoutFactory(partner=partner, status=PayoutStatus.PAID)
    balance = open_balance(partner)
    assert balance.is_empty
    assert balance.totals == {}


# ---------------------------------------------------------------------------------------
# The final statement
# ---------------------------------------------------------------------------------------


def test_final_statement_shows_owed_at_notice_paid_line_by_line_and_remaining(roles):
    car = roles["car"]
    partner = PartnerFactory(cam=roles["cam"])
    a = PayoutFactory(partner=partner, amount=D("100.10"), earned_on=days_ago(60))
    b = PayoutFactory(partner=partner, amount=D("0.20"), earned_on=days_ago(50))
    c = PayoutFactory(partner=partner, amount=D("50.00"), currency="EUR", earned_on=days_ago(45))
    d = PayoutFactory(partner=partner, amount=D("19.99"), currency="EUR", earned_on=days_ago(40))
    e = PayoutFactory(partner=partner, amount=D("30.00"), earned_on=days_ago(70))
    # Paid before the notice: reduces what was owed at notice (e leaves the statement).
    pay(car, a, amount=D("40.05"), paid_on=days_ago(10), reference="PRE-A")
    pay(car, e, amount=D("30.00"), paid_on=days_ago(10), reference="PRE-E")

    case = case_at(roles, "step_8", partner)
    assert case.notice_date == days_ago(1)
    pay(car, a, case=case, amount=D("60.05"), reference="ACH-A")
    pay(car, d, case=case, amount=D("9.99"), reference="ACH-D")
    void_payout(actor=car, case_id=case.pk, payout_id=c.pk, reason="Duplicate of an old payout")

    statement = final_statement(reload(case))

    assert statement.notice_date == days_ago(1)
    rows = [
        (
            line.payout.pk,
            line.payout.status,
            line.owed_at_notice,
            line.paid_since_notice,
            line.remaining,
            [p.reference for p in line.payments],
        )
        for line in statement.lines
    ]
    assert rows == [
        (a.pk, PayoutStatus.PAID, D("60.05"), D("60.05"), D("0.00"), ["ACH-A"]),
        (b.pk, PayoutStatus.OPEN, D("0.20"), D("0.00"), D("0.20"), []),
        (c.pk, PayoutStatus.VOID, D("50.00"), D("0.00"), D("0.00"), []),
        (d.pk, PayoutStatus.PENDING, D("19.99"), D("9.99"), D("10.00"), ["ACH-D"]),
    ]
    assert statement.totals == {
        "EUR": {"owed_at_notice": D("69.99"), "paid": D("9.99"), "remaining": D("10.00")},
        "USD": {"owed_at_notice": D("60.25"), "paid": D("60.05"), "remaining": D("0.20")},
    }
    data = statement.as_event_data()
    assert data["notice_date"] == days_ago(1).isoformat()
    assert data["totals"] == {
        "EUR": {"owed_at_notice": "69.99", "paid": "9.99", "remaining": "10.00"},
        "USD": {"owed_at_notice": "60.25", "paid": "60.05", "remaining": "0.20"},
    }
    void_line = data["lines"][2]
    assert void_line["payout"] == c.reference
    assert (
        void_line["status"] == "void" and void_line["void_reason"] == "Duplicate of an old payout"
    )
    assert data["lines"][0]["paid"] == [
        {"reference": "ACH-A", "amount": "60.05", "paid_on": today().isoformat(), "by": "car"}
    ]
    assert e.pk not in {line.payout.pk for line in statement.lines}


def test_final_statement_lists_open_commissions_and_orders(roles):
    partner = PartnerFactory(cam=roles["cam"])
    PayoutFactory(partner=partner)
    cm = commission(partner, "12.34")
    od = order(partner, "56.78", "EUR")
    case = case_at(roles, "step_8", partner)
    statement = final_statement(case)
    assert [c.pk for c in statement.open_commissions] == [cm.pk]
    assert [o.pk for o in statement.open_orders] == [od.pk]


# ---------------------------------------------------------------------------------------
# Step 7: money on the table, computed and stored
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("what", ["commission", "order"])
def test_step_7_nothing_owed_is_refused_while_a_commission_or_order_is_open(roles, what):
    partner = PartnerFactory(cam=roles["cam"])
    case = case_at(roles, "step_7", partner)
    assert case.state == "step_7"
    line = commission(partner, "0.10") if what == "commission" else order(partner, "0.20", "EUR")
    before = ledger_state()
    with pytest.raises(ActionRefused, match="money on the table"):
        complete(case, roles["car"], data={"money_on_table": False})
    assert ledger_state() == before
    assert reload(case).state == "step_7"

    case = complete(case, roles["car"], data={"money_on_table": True})
    assert case.state == "step_8"
    event = case.events.get(kind=EventKind.STEP_COMPLETED, step_number=7)
    assert event.data["money_on_table"] is True
    balance = event.data["open_balance"]
    if what == "commission":
        assert balance["totals"] == {"USD": "0.10"}
        assert balance["commissions"] == [
            {"reference": line.reference, "amount": "0.10", "currency": "USD"}
        ]
        assert balance["orders"] == []
    else:
        assert balance["totals"] == {"EUR": "0.20"}
        assert balance["orders"] == [
            {"reference": line.reference, "amount": "0.20", "currency": "EUR"}
        ]
        assert balance["commissions"] == []
    assert balance["payouts"] == []


def test_step_7_event_holds_the_mixed_currency_balance(roles):
    partner = PartnerFactory(cam=roles["cam"])
    case = case_at(roles, "step_7", partner)
    p1 = PayoutFactory(partner=partner, amount=D("0.10"))
    PayoutFactory(partner=partner, amount=D("0.20"))
    PayoutFactory(partner=partner, amount=D("99.99"), currency="EUR")
    commission(partner, "0.01", "EUR")
    pay(roles["car"], p1, amount=D("0.05"), reference="PART-1", paid_on=days_ago(3))
    case = complete(case, roles["car"], data={"money_on_table": True})
    event = case.events.get(step_number=7)
    assert event.data["open_balance"]["totals"] == {"EUR": "100.00", "USD": "0.25"}
    assert len(event.data["open_balance"]["payouts"]) == 3


def test_step_7_nothing_owed_goes_to_step_10_when_the_balance_is_empty(roles):
    partner = PartnerFactory(cam=roles["cam"])
    case = case_at(roles, "step_7", partner)
    commission(partner, "5.00", status=CommissionStatus.VOID)
    order(partner, "5.00", status=OrderStatus.CANCELLED)
    case = complete(case, roles["car"], data={"money_on_table": False})
    assert case.state == "step_10"
    assert case.events.get(step_number=7).data["open_balance"] == {
        "totals": {},
        "payouts": [],
        "commissions": [],
        "orders": [],
    }


# ---------------------------------------------------------------------------------------
# Step 8: pay and close everything
# ---------------------------------------------------------------------------------------


def test_step_8_completes_only_after_payouts_commissions_and_orders_are_settled(roles):
    car = roles["car"]
    partner = PartnerFactory(cam=roles["cam"])
    keep = PayoutFactory(partner=partner, amount=D("25.00"))
    drop = PayoutFactory(partner=partner, amount=D("40.00"))
    cm = commission(partner, "10.10")
    od_close = order(partner, "0.20")
    od_cancel = order(partner, "3.00")
    case = case_at(roles, "step_8", partner)

    def refused(match):
        with pytest.raises(ActionRefused, match=match):
            complete(case, car)
        assert reload(case).state == "step_8"

    refused(r"2 payout\(s\).*1 open commission\(s\), 2 open order\(s\)")
    pay(car, keep, case=case)
    void_payout(actor=car, case_id=case.pk, payout_id=drop.pk, reason="Clawed back")
    refused(r"0 payout\(s\).*1 open commission\(s\), 2 open order\(s\)")
    resolve_order(actor=car, case_id=case.pk, order_id=od_close.pk, outcome=OrderStatus.CLOSED)
    resolve_order(
        actor=car,
        case_id=case.pk,
        order_id=od_cancel.pk,
        outcome=OrderStatus.CANCELLED,
        note="Client cancelled",
    )
    refused(r"2 open commission\(s\), 0 open order\(s\)")
    (payout,) = roll_up_commissions(actor=car, case_id=case.pk)
    assert payout.amount == D("10.30")
    assert reload(cm).status == CommissionStatus.IN_PAYOUT
    refused(r"1 payout\(s\)")
    pay(car, payout, case=case, amount=D("10.00"), reference="ACH-PART")
    refused(r"1 payout\(s\)")  # pending is still outstanding
    pay(car, reload(payout), case=case, amount=D("0.30"), reference="ACH-REST")
    assert complete(case, car).state == "step_9"


def test_roll_up_makes_one_payout_per_currency_with_the_exact_sum(roles):
    car = roles["car"]
    partner = PartnerFactory(cam=roles["cam"])
    PayoutFactory(partner=partner)  # something owed, so step 7 leads to step 8
    usd = [commission(partner, v) for v in ("0.10", "0.20", "100.05", "0.01")]
    eur = [commission(partner, v, "EUR") for v in ("0.10", "0.20")]
    done = commission(partner, "7.00", status=CommissionStatus.IN_PAYOUT)
    void = commission(partner, "8.00", status=CommissionStatus.VOID)
    other = commission(PartnerFactory(), "9.00")
    case = case_at(roles, "step_8", partner)

    payouts = roll_up_commissions(actor=car, case_id=case.pk)

    assert sorted((p.currency, p.amount) for p in payouts) == [
        ("EUR", D("0.30")),
        ("USD", D("100.36")),
    ]
    for payout in payouts:
        stored = reload(payout)
        assert stored.status == PayoutStatus.OPEN and stored.paid_amount == D("0.00")
        assert stored.partner_id == partner.pk
        lines = stored.commissions.all()
        assert {c.currency for c in lines} == {payout.currency}
        assert sum((c.amount for c in lines), D("0")) == stored.amount
    for line in usd + eur:
        assert reload(line).status == CommissionStatus.IN_PAYOUT
    for line, status in ((done, "in_payout"), (void, "void"), (other, "open")):
        assert reload(line).status == status and reload(line).payout_id is None
    event = case.events.filter(kind=EventKind.LEDGER_CHANGED).get()
    assert sorted(event.data["payouts_created"]) == sorted(p.reference for p in payouts)
    before = ledger_state()
    with pytest.raises(ActionRefused, match="no open commissions"):
        roll_up_commissions(actor=car, case_id=case.pk)
    assert ledger_state() == before


def test_resolving_an_order_closed_earns_a_new_open_commission(roles):
    car = roles["car"]
    partner = PartnerFactory(cam=roles["cam"])
    od = order(partner, "89.90", "EUR")
    case = case_at(roles, "step_8", partner)
    resolve_order(actor=car, case_id=case.pk, order_id=od.pk, outcome=OrderStatus.CLOSED)
    assert reload(od).status == OrderStatus.CLOSED
    earned = Commission.objects.get(partner=partner, reference=od.reference)
    assert (earned.status, earned.amount, earned.currency, earned.source) == (
        CommissionStatus.OPEN,
        D("89.90"),
        "EUR",
        "order",
    )
    assert earned.earned_on == today()
    event = case.events.filter(kind=EventKind.LEDGER_CHANGED).get()
    assert event.data["order"] == od.reference and event.data["outcome"] == "closed"
    # Already resolved: cannot be resolved again.
    before = ledger_state()
    with pytest.raises(ActionRefused, match="No such open order"):
        resolve_order(
            actor=car, case_id=case.pk, order_id=od.pk, outcome=OrderStatus.CANCELLED, note="again"
        )
    assert ledger_state() == before


@pytest.mark.parametrize("note", ["", "   "])
def test_cancelling_an_order_needs_a_note(roles, note):
    car = roles["car"]
    partner = PartnerFactory(cam=roles["cam"])
    od = order(partner, "15.00")
    case = case_at(roles, "step_8", partner)
    before = ledger_state()
    with pytest.raises(ActionRefused, match="why the order is cancelled"):
        resolve_order(
            actor=car, case_id=case.pk, order_id=od.pk, outcome=OrderStatus.CANCELLED, note=note
        )
    assert ledger_state() == before
    resolve_order(
        actor=car, case_id=case.pk, order_id=od.pk, outcome=OrderStatus.CANCELLED, note="Refunded"
    )
    stored = reload(od)
    assert (stored.status, stored.resolution_note) == (OrderStatus.CANCELLED, "Refunded")
    assert not Commission.objects.filter(partner=partner).exists()


@pytest.mark.parametrize("reason", ["", "   "])
def test_voiding_a_payout_needs_a_reason(roles, reason):
    partner = PartnerFactory(cam=roles["cam"])
    payout = PayoutFactory(partner=partner)
    case = case_at(roles, "step_8", partner)
    before = ledger_state()
    with pytest.raises(ActionRefused, match="why the payout is voided"):
        void_payout(actor=roles["car"], case_id=case.pk, payout_id=payout.pk, reason=reason)
    assert ledger_state() == before


def test_a_partly_paid_or_paid_payout_cannot_be_voided(roles):
    car = roles["car"]
    partner = PartnerFactory(cam=roles["cam"])
    partly = PayoutFactory(partner=partner, amount=D("20.00"))
    full = PayoutFactory(partner=partner, amount=D("30.00"))
    fresh = PayoutFactory(partner=partner, amount=D("40.00"))
    case = case_at(roles, "step_8", partner)
    pay(car, partly, case=case, amount=D("0.01"), reference="ACH-CENT")
    pay(car, full, case=case)
    before = ledger_state()
    for payout in (partly, full):
        with pytest.raises(ActionRefused, match="cannot be voided"):
            void_payout(actor=car, case_id=case.pk, payout_id=payout.pk, reason="Mistake")
    assert ledger_state() == before
    voided = void_payout(actor=car, case_id=case.pk, payout_id=fresh.pk, reason="Mistake")
    assert (reload(voided).status, reload(voided).void_reason) == ("void", "Mistake")


# ---------------------------------------------------------------------------------------
# record_payment: idempotent, never overpaid
# ---------------------------------------------------------------------------------------


def test_the_same_idempotency_key_twice_records_one_payment(roles):
    partner = PartnerFactory(cam=roles["cam"])
    payout = PayoutFactory(partner=partner, amount=D("250.00"))
    case = case_at(roles, "step_8", partner)
    key = uuid.uuid4()
    first = pay(roles["car"], payout, case=case, amount=D("100.00"), idempotency_key=key)
    after_first = ledger_state()
    again = pay(roles["car"], payout, case=case, amount=D("100.00"), idempotency_key=key)
    assert again.pk == first.pk
    assert ledger_state() == after_first
    assert Payment.objects.filter(idempotency_key=key).count() == 1
    stored = reload(payout)
    assert (stored.paid_amount, stored.status) == (D("100.00"), PayoutStatus.PENDING)
    assert case.events.filter(kind=EventKind.PAYMENT_RECORDED).count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("amount", [D("100.00"), D("250.00")])
def test_two_concurrent_submissions_with_one_key_record_one_payment(roles, amount):
    partner = PartnerFactory(cam=roles["cam"])
    payout = PayoutFactory(partner=partner, amount=D("250.00"))
    case = case_at(roles, "step_8", partner)
    key = uuid.uuid4()

    def submit():
        return record_payment(
            actor=roles["car"],
            case_id=case.pk,
            payout_id=payout.pk,
            amount=amount,
            paid_on=today(),
            reference="ACH-TWICE",
            idempotency_key=key,
        )

    results = race([submit, submit, submit])

    assert all(isinstance(r, Payment) for r in results), results
    assert len({r.pk for r in results}) == 1
    assert Payment.objects.filter(payout=payout).count() == 1
    assert reload(payout).paid_amount == amount
    assert case.events.filter(kind=EventKind.PAYMENT_RECORDED).count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_payments_with_different_keys_cannot_overpay(roles):
    partner = PartnerFactory(cam=roles["cam"])
    payout = PayoutFactory(partner=partner, amount=D("100.00"))
    case = case_at(roles, "step_8", partner)

    def submit(reference):
        return lambda: record_payment(
            actor=roles["car"],
            case_id=case.pk,
            payout_id=payout.pk,
            amount=D("60.00"),
            paid_on=today(),
            reference=reference,
        )

    results = race([submit("ACH-1"), submit("ACH-2")])

    assert sum(isinstance(r, Payment) for r in results) == 1, results
    assert sum(isinstance(r, ActionRefused) for r in results) == 1, results
    assert reload(payout).paid_amount == D("60.00")


def test_overpayment_is_refused_by_the_service(roles):
    payout = PayoutFactory(partner=PartnerFactory(), amount=D("0.30"))
    pay(roles["car"], payout, amount=D("0.10"), reference="P1")
    before = ledger_state()
    with pytest.raises(ActionRefused, match="more than the 0.20"):
        pay(roles["car"], payout, amount=D("0.21"), reference="P2")
    assert ledger_state() == before
    pay(roles["car"], payout, amount=D("0.20"), reference="P3")
    assert reload(payout).status == PayoutStatus.PAID
    with pytest.raises(ActionRefused, match="already paid"):
        pay(roles["car"], payout, amount=D("0.01"), reference="P4")


def test_overpayment_is_refused_by_the_database():
    payout = PayoutFactory(partner=PartnerFactory(), amount=D("100.00"))
    with pytest.raises(IntegrityError), transaction.atomic():
        Payout.objects.filter(pk=payout.pk).update(paid_amount=payout.amount + 1)
    with pytest.raises(IntegrityError), transaction.atomic():
        Payout.objects.filter(pk=payout.pk).update(paid_amount=D("-0.01"))
    # "Paid" means fully paid.
    with pytest.raises(IntegrityError), transaction.atomic():
        Payout.objects.filter(pk=payout.pk).update(status=PayoutStatus.PAID, paid_amount=D("99.99"))
    stored = reload(payout)
    assert (stored.paid_amount, stored.status) == (D("0.00"), PayoutStatus.OPEN)
    Payout.objects.filter(pk=payout.pk).update(paid_amount=payout.amount)  # exactly: allowed


def test_pay_in_full_refuses_a_batch_reference_too_long_for_a_payout_and_pays_nothing(roles):
    """The payment's reference is "<batch>/<payout>" (80 characters at most): a long pair was
    a database error (a 500) before; now a clear refusal, and nothing is paid."""
    partner = PartnerFactory(cam=roles["cam"])
    short = PayoutFactory(partner=partner, amount=D("1.00"), reference="P-1")
    long = PayoutFactory(partner=partner, amount=D("2.00"), reference="P-" + "9" * 70)
    case = case_at(roles, "step_8", partner)
    before = ledger_state()
    with pytest.raises(ActionRefused, match=f"too long for payout {long.reference}"):
        pay_in_full(
            actor=roles["car"],
            case_id=case.pk,
            payout_ids=[short.pk, long.pk],
            paid_on=today(),
            method="wire",
            batch_reference="B" * 20,
            idempotency_key=uuid.uuid4(),
        )
    assert ledger_state() == before


def test_pay_in_full_resubmitted_with_the_same_key_records_nothing_new(roles):
    car = roles["car"]
    partner = PartnerFactory(cam=roles["cam"])
    usd = PayoutFactory(partner=partner, amount=D("0.10"))
    eur = PayoutFactory(partner=partner, amount=D("0.20"), currency="EUR")
    case = case_at(roles, "step_8", partner)
    key = uuid.uuid4()

    def batch():
        return pay_in_full(
            actor=car,
            case_id=case.pk,
            payout_ids=[usd.pk, eur.pk],
            paid_on=today(),
            method="wire",
            batch_reference="BATCH-7",
            idempotency_key=key,
        )

    first = batch()
    assert sorted((p.amount, p.currency) for p in first) == [
        (D("0.10"), "USD"),
        (D("0.20"), "EUR"),
    ]
    assert {p.reference for p in first} == {f"BATCH-7/{usd.reference}", f"BATCH-7/{eur.reference}"}
    assert {reload(usd).status, reload(eur).status} == {PayoutStatus.PAID}
    after_first = ledger_state()
    again = batch()
    assert sorted(p.pk for p in again) == sorted(p.pk for p in first)
    assert ledger_state() == after_first
    # A new submission (new key) of the same batch is refused: they are paid.
    with pytest.raises(ActionRefused, match="already paid"):
        pay_in_full(
            actor=car,
            case_id=case.pk,
            payout_ids=[usd.pk],
            paid_on=today(),
            method="wire",
            batch_reference="BATCH-8",
            idempotency_key=uuid.uuid4(),
        )
    assert ledger_state() == after_first


# ---------------------------------------------------------------------------------------
# Four eyes on step 9 (Decision B)
# ---------------------------------------------------------------------------------------


@pytest.fixture
def verifying(roles):
    """A case at step 9 whose three payouts (0.10 and 0.20 USD, 99.99 EUR) `car` paid."""
    partner = PartnerFactory(cam=roles["cam"])
    usd = PayoutFactory(partner=partner, amount=D("0.10"))
    usd2 = PayoutFactory(partner=partner, amount=D("0.20"))
    eur = PayoutFactory(partner=partner, amount=D("99.99"), currency="EUR")
    case = case_at(roles, "step_8", partner)
    for payout in (usd, usd2, eur):
        pay(roles["car"], payout, case=case)
    case = complete(case, roles["car"])
    assert case.state == "step_9"
    return case


def test_the_payer_cannot_verify_but_another_car_user_can_with_a_snapshot(roles, verifying):
    case = verifying
    events = CaseEvent.objects.count()
    with pytest.raises(ActionRefused, match="another CAR member"):
        complete(case, roles["car"])
    assert CaseEvent.objects.count() == events
    assert reload(case).state == "step_9"

    expected = final_statement(reload(case)).as_event_data()
    case = complete(case, roles["car2"])
    assert case.state == "step_10"
    event = case.events.get(kind=EventKind.STEP_COMPLETED, step_number=9)
    assert event.actor == roles["car2"]
    snapshot = event.data["statement"]
    assert snapshot == expected
    assert snapshot["totals"] == {
        "EUR": {"owed_at_notice": "99.99", "paid": "99.99", "remaining": "0.00"},
        "USD": {"owed_at_notice": "0.30", "paid": "0.30", "remaining": "0.00"},
    }
    assert len(snapshot["lines"]) == 3
    assert {paid["by"] for line in snapshot["lines"] for paid in line["paid"]} == {"car"}


@pytest.mark.postgres
def test_the_database_refuses_a_verification_event_by_the_payer(roles, verifying):
    assert connection.vendor == "postgresql"
    case = verifying

    def verification_by(user):
        return CaseEvent.objects.create(
            case=case,
            kind=EventKind.STEP_COMPLETED,
            step_number=9,
            from_state="step_9",
            to_state="step_10",
            actor=user,
        )

    with pytest.raises(DatabaseError, match="four eyes"), transaction.atomic():
        verification_by(roles["car"])
    assert not case.events.filter(step_number=9).exists()
    verification_by(roles["car2"])  # the trigger singles out the payer only
    assert case.events.filter(step_number=9, actor=roles["car2"]).count() == 1


# ---------------------------------------------------------------------------------------
# The payment guard after the offboard date
# ---------------------------------------------------------------------------------------

OFFBOARDED_DAYS_AGO = 10


@pytest.fixture
def offboarded(roles):
    """A partner who left 10 days ago with a payout earned 40 days ago, still open."""
    partner = PartnerFactory(cam=roles["cam"])
    payout = PayoutFactory(partner=partner, amount=D("80.00"), earned_on=days_ago(40))
    Partner.objects.filter(pk=partner.pk).update(offboard_date=days_ago(OFFBOARDED_DAYS_AGO))
    partner.refresh_from_db()
    return partner, payout


def test_a_payment_after_the_offboard_date_is_refused_without_override(roles, offboarded):
    partner, payout = offboarded
    before = ledger_state()
    for paid_on in (today(), days_ago(OFFBOARDED_DAYS_AGO - 1)):
        with pytest.raises(ActionRefused, match="left the program"):
            pay(roles["car"], payout, paid_on=paid_on, reference=f"LATE-{paid_on}")
    assert ledger_state() == before
    assert not payments_after_offboard_date().exists()


def test_a_payment_dated_and_recorded_on_the_offboard_date_is_allowed(roles, offboarded):
    partner, payout = offboarded
    on_the_day = dt.datetime.combine(partner.offboard_date, dt.time(15), tzinfo=LOCAL)
    with time_machine.travel(on_the_day, tick=False):
        payment = pay(roles["car"], payout, paid_on=partner.offboard_date, reference="ON-DAY")
    assert payment.override is None
    assert not payments_after_offboard_date().exists()


def test_a_backdated_payment_recorded_after_the_offboard_date_needs_an_override(roles, offboarded):
    """Decision D's second clock: dated on the offboard date, recorded weeks later."""
    partner, payout = offboarded
    before = ledger_state()
    with pytest.raises(ActionRefused, match="recorded or dated after it"):
        pay(roles["car"], payout, paid_on=partner.offboard_date, reference="BACKDATED")
    assert ledger_state() == before
    payment = pay_with_override(roles, payout, paid_on=partner.offboard_date, reference="BD-OK")
    assert payment.after_offboard_date is True
    assert list(payments_after_offboard_date()) == [payment]


def test_a_payment_dated_before_the_payout_was_earned_is_refused(roles):
    payout = PayoutFactory(amount=D("10.00"), earned_on=days_ago(5))
    with pytest.raises(ActionRefused, match="before it was earned"):
        pay(roles["car"], payout, paid_on=days_ago(6), reference="TOO-EARLY")
    assert not Payment.objects.exists()


def test_accrual_and_payout_creation_after_the_offboard_date_are_refused(roles, offboarded):
    partner, _ = offboarded
    car = roles["car"]
    before = ledger_state()
    with pytest.raises(ActionRefused, match="left the program"):
        accrue_commission(
            actor=car,
            partner=partner,
            source="portal",
            reference="CM-LATE",
            amount=D("5.00"),
            currency="USD",
            period_start=days_ago(5),
            period_end=today(),
            earned_on=today(),
        )
    for earned_on in (today(), days_ago(30)):
        with pytest.raises(ActionRefused, match="left the program"):
            create_payout(
                actor=car,
                partner=partner,
                reference=f"PO-LATE-{earned_on}",
                description="Late",
                amount=D("5.00"),
                currency="USD",
                earned_on=earned_on,
            )
    # Even with an override, nothing earned after the offboard date is accrued or paid out.
    with pytest.raises(ActionRefused, match="with or without an override"):
        accrue_commission(
            actor=car,
            partner=partner,
            source="portal",
            reference="CM-LATE",
            amount=D("5.00"),
            currency="USD",
            period_start=days_ago(5),
            period_end=today(),
            earned_on=today(),
            override_reason="Trying anyway",
        )
    with pytest.raises(ActionRefused, match="with or without an override"):
        create_payout(
            actor=car,
            partner=partner,
            reference="PO-LATE-X",
            description="Late",
            amount=D("5.00"),
            currency="USD",
            earned_on=today(),
            override_reason="Trying anyway",
        )
    assert Commission.objects.filter(partner=partner).count() == 0
    assert Payout.objects.filter(partner=partner).count() == 1
    # A refused action leaves no override behind in the audit trail.
    assert ledger_state() == before


def test_accruing_after_the_offboard_date_a_commission_earned_before_needs_an_approved_override(
    roles, offboarded
):
    """Today is after the offboard date: a commission accrued now, even one dated before
    the offboard date, is new money for a past partner and needs an override that a second
    CAR user approves (Decision D)."""
    partner, _ = offboarded
    car, car2 = roles["car"], roles["car2"]
    kwargs = {
        "actor": car,
        "partner": partner,
        "source": "portal",
        "reference": "CM-BACKDATED",
        "amount": D("5.00"),
        "currency": "USD",
        "period_start": days_ago(60),
        "period_end": days_ago(31),
        "earned_on": days_ago(30),
    }
    with pytest.raises(ActionRefused, match="left the program"):
        accrue_commission(**kwargs)
    with pytest.raises(OverrideRequested, match="waiting for another CAR user"):
        accrue_commission(**kwargs, override_reason="Q3 commission, found in audit")
    assert not Commission.objects.filter(partner=partner).exists()
    override = GuardOverride.objects.get()
    assert (override.status, override.requested_by, override.approved_by) == ("pending", car, None)
    # Pending: asking again changes nothing.
    with pytest.raises(OverrideRequested):
        accrue_commission(**kwargs, override_reason="Q3 commission, found in audit")
    assert GuardOverride.objects.count() == 1
    approve_override(actor=car2, override_id=override.pk)
    line = accrue_commission(**kwargs)
    assert line.override == override
    assert reload(override).status == "used"
    assert reload(override).approved_by == car2


def test_an_override_approved_by_a_second_car_user_lets_a_late_payment_through(roles, offboarded):
    partner, payout = offboarded
    car = roles["car"]
    # Another offboarded partner paid on time: not an exception.
    on_time_partner = PartnerFactory()
    on_time = PayoutFactory(partner=on_time_partner, amount=D("7.00"), earned_on=days_ago(50))
    pay(car, on_time, paid_on=days_ago(20), reference="ON-TIME")
    Partner.objects.filter(pk=on_time_partner.pk).update(offboard_date=days_ago(15))

    payment = pay_with_override(
        roles,
        payout,
        amount=D("80.00"),
        reference="LATE-OK",
        override_reason="Earned in Q3 before leaving; approved by the controller",
    )

    assert reload(payout).status == PayoutStatus.PAID
    override = GuardOverride.objects.get()
    assert (override.partner, override.requested_by, override.approved_by, override.reason) == (
        partner,
        car,
        roles["car2"],
        "Earned in Q3 before leaving; approved by the controller",
    )
    assert override.status == "used"
    assert payment.override == override
    assert list(payments_after_offboard_date()) == [payment]

    notifications = Notification.objects.count()
    assert report_payments_after_offboard() == 1
    sent = Notification.objects.filter(kind=NotificationKind.PAYMENT_EXCEPTION)
    assert set(sent.values_list("recipient__username", flat=True)) == {"car", "car2", "manager"}
    assert sent.count() == 3
    assert all("80.00" in n.title and "Earned in Q3" in n.body for n in sent)
    assert reload(payment).exception_reported_at is not None
    after = Notification.objects.count()
    assert after == notifications + 3
    assert report_payments_after_offboard() == 0
    assert Notification.objects.count() == after
    assert list(payments_after_offboard_date()) == [payment]  # the report still lists it


def test_an_override_needs_a_second_car_user(roles, offboarded):
    """Maker-checker: the requester cannot approve, the approver does not record."""
    _, payout = offboarded
    car, car2 = roles["car"], roles["car2"]
    with pytest.raises(OverrideRequested):
        pay(car, payout, reference="LATE-4E", override_reason="Earned before leaving")
    override = GuardOverride.objects.get()
    with pytest.raises(ActionRefused, match="another CAR user must decide"):
        approve_override(actor=car, override_id=override.pk)
    assert reload(override).status == "pending"
    # Not approved yet: the payment is still refused.
    with pytest.raises(ActionRefused, match="needs an override"):
        pay(car, payout, reference="LATE-4E")
    approve_override(actor=car2, override_id=override.pk)
    with pytest.raises(ActionRefused, match="needs an override"):
        pay(car2, payout, reference="LATE-4E")  # the checker does not use what they approved
    # It covers exactly what was asked: another amount is not covered.
    with pytest.raises(ActionRefused, match="needs an override"):
        pay(car, payout, amount=D("1.00"), reference="LATE-4E-PART")
    payment = pay(car, payout, reference="LATE-4E")
    assert payment.override == override
    # Used once.
    with pytest.raises(ActionRefused):
        pay(car, PayoutFactory(partner=payout.partner, earned_on=days_ago(40)), reference="X")


def test_a_refused_override_lets_nothing_through(roles, offboarded):
    _, payout = offboarded
    with pytest.raises(OverrideRequested):
        pay(roles["car"], payout, reference="LATE-R", override_reason="Please")
    override = GuardOverride.objects.get()
    with pytest.raises(ActionRefused, match="Say why"):
        refuse_override(actor=roles["car2"], override_id=override.pk, reason=" ")
    refuse_override(actor=roles["car2"], override_id=override.pk, reason="Not owed")
    assert reload(override).status == "refused"
    with pytest.raises(ActionRefused, match="already refused"):
        approve_override(actor=roles["car2"], override_id=override.pk)
    with pytest.raises(ActionRefused, match="needs an override"):
        pay(roles["car"], payout, reference="LATE-R")
    assert not Payment.objects.exists()


def test_an_override_with_a_blank_reason_is_not_asked_for(roles, offboarded):
    _, payout = offboarded
    before = ledger_state()
    with pytest.raises(ActionRefused, match="Give a reason"):
        pay(roles["car"], payout, reference="LATE-BLANK", override_reason="   ")
    assert ledger_state() == before
    assert not GuardOverride.objects.exists()


@pytest.mark.parametrize("username", ["cam", "salesops", "portaladmin", "manager", "nobody"])
def test_only_car_can_ask_for_or_approve_an_override(roles, offboarded, username):
    partner, payout = offboarded
    user = roles[username]
    before = ledger_state()
    with pytest.raises(ActionRefused):
        pay(user, payout, reference="LATE-X", override_reason="Let me")
    with pytest.raises(ActionRefused):
        create_payout(
            actor=user,
            partner=partner,
            reference="PO-X",
            description="x",
            amount=D("1.00"),
            currency="USD",
            earned_on=days_ago(30),
            override_reason="Let me",
        )
    assert ledger_state() == before
    assert not GuardOverride.objects.exists()
    with pytest.raises(OverrideRequested):
        pay(roles["car"], payout, reference="LATE-X", override_reason="Earned before")
    with pytest.raises(ActionRefused, match="Only CAR"):
        approve_override(actor=user, override_id=GuardOverride.objects.get().pk)


@pytest.mark.postgres
def test_the_database_refuses_a_late_payment_inserted_without_an_approved_override(
    roles, offboarded
):
    assert connection.vendor == "postgresql"
    partner, payout = offboarded

    def raw_payment(reference, paid_on, override=None, by="car"):
        return Payment.objects.create(
            payout=payout,
            amount=D("1.00"),
            currency="USD",
            paid_on=paid_on,
            method="ach",
            reference=reference,
            recorded_by=roles[by],
            override=override,
        )

    with pytest.raises(DatabaseError, match="payment guard"), transaction.atomic():
        raw_payment("RAW-LATE", today())
    # Dated on the offboard date but recorded weeks after it (Decision D's second clock).
    with pytest.raises(DatabaseError, match="payment guard"), transaction.atomic():
        raw_payment("RAW-BACKDATED", partner.offboard_date)
    assert not Payment.objects.exists()
    pending = GuardOverride.objects.create(
        partner=partner, requested_by=roles["car"], reason="Audited"
    )
    with pytest.raises(DatabaseError, match="payment guard"), transaction.atomic():
        raw_payment("RAW-PENDING", today(), pending)
    approved = GuardOverride.objects.create(
        partner=partner,
        requested_by=roles["car"],
        approved_by=roles["car2"],
        status="approved",
        reason="Audited",
    )
    with pytest.raises(DatabaseError, match="payment guard"), transaction.atomic():
        raw_payment("RAW-BY-CHECKER", today(), approved, by="car2")
    payment = raw_payment("RAW-OVERRIDDEN", today(), approved)
    assert list(payments_after_offboard_date().values_list("reference", flat=True)) == [
        "RAW-OVERRIDDEN"
    ]
    # A recorded payment does not change afterwards.
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        Payment.objects.filter(pk=payment.pk).update(paid_on=partner.offboard_date)
    with pytest.raises(IntegrityError), transaction.atomic():
        GuardOverride.objects.create(
            partner=partner,
            requested_by=roles["car"],
            approved_by=roles["car"],
            status="approved",
            reason="Self-approved",
        )


def test_the_demo_data_has_no_payment_after_an_offboard_date():
    seed()
    assert Payment.objects.exists()
    assert Partner.objects.filter(offboard_date__isnull=False).exists()
    assert list(payments_after_offboard_date()) == []
