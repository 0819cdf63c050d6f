"""The case services' rules: one open case, who may open, money checks, four eyes,
payments, the append-only history and the notification outbox."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone

from accounts.roles import Role
from notifications.models import Notification, NotificationKind
from offboarding import services
from offboarding.demo import request_data, step_data, step_evidence
from offboarding.models import Case, CaseEvent, ImmutableRowError, Initiator, Reason
from offboarding.money.services import record_payment
from offboarding.services import ActionRefused, CaseMovedOn
from partners.models import Partner, PartnerStatus
from payouts.models import Payment, Payout, PayoutStatus
from tests.factories import CaseFactory, PartnerFactory, PayoutFactory, UserFactory

pytestmark = pytest.mark.django_db

TODAY = dt.date(2026, 3, 2)


# ---------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------


def open_for(partner, *, actor=None, company=True):
    return services.open_case(
        actor=actor or partner.cam,
        partner_id=partner.pk,
        data=request_data(company=company, received_on=TODAY),
    )


def complete(case, actor, data=None):
    data = step_data(case) if data is None else data
    return services.complete_step(
        actor=actor,
        case_id=case.pk,
        step_number=case.current_step.number,
        expected_state=case.state,
        data=data,
        evidence=step_evidence(case, legal=bool(data.get("legal_action"))),
    )


def pay(case, payout, actor, *, amount=None, reference=None):
    return record_payment(
        actor=actor,
        case_id=case.pk,
        payout_id=payout.pk,
        amount=payout.amount if amount is None else amount,
        paid_on=TODAY,
        reference=reference or f"ACH-{payout.reference}",
    )


def reload(obj):
    return type(obj).objects.get(pk=obj.pk)


def case_at(roles, state, *, money=True, beta=False):
    partner = PartnerFactory(cam=roles["cam"], beta=beta)
    return CaseFactory(partner=partner, state=state, money=money, actors=roles)


def counts():
    return {
        model.__name__: model.objects.count() for model in (Case, CaseEvent, Notification, Payment)
    }


# ---------------------------------------------------------------------------------------
# One open case per partner; who may open one
# ---------------------------------------------------------------------------------------

ONE_CASE = r"already has an (open )?offboarding case"


def test_a_second_open_case_for_the_same_partner_is_refused(roles):
    partner = PartnerFactory(cam=roles["cam"])
    first = open_for(partner)
    before = counts()
    with pytest.raises(ActionRefused, match=ONE_CASE):
        open_for(partner, company=False)
    assert counts() == before
    assert list(Case.objects.filter(partner=partner)) == [first]


def test_the_database_backstop_refuses_a_second_open_case_with_a_clear_message(roles):
    """Even if the partner's status says active (e.g. fixed by hand), the unique
    constraint stops a second open case and the service explains it."""
    partner = PartnerFactory(cam=roles["cam"])
    open_for(partner)
    Partner.objects.filter(pk=partner.pk).update(status=PartnerStatus.ACTIVE)
    before = counts()
    with pytest.raises(ActionRefused, match=ONE_CASE):
        open_for(partner)
    assert counts() == before


def _case_row(partner, user, **kwargs):
    return Case.objects.create(
        partner=partner,
        opened_by=user,
        initiated_by=Initiator.COMPANY,
        reason=Reason.INACTIVITY,
        request_received_on=TODAY,
        request_channel="email",
        **kwargs,
    )


def test_the_database_constraint_refuses_a_second_open_case_row(roles):
    partner = PartnerFactory(cam=roles["cam"])
    open_for(partner)
    with pytest.raises(IntegrityError), transaction.atomic():
        _case_row(partner, roles["cam"], state="step_4")
    assert Case.objects.filter(partner=partner).count() == 1


def test_closed_cases_do_not_count_against_the_one_open_case_rule(roles):
    partner = PartnerFactory(cam=roles["cam"])
    _case_row(partner, roles["cam"], state="withdrawn")
    _case_row(partner, roles["cam"], state="done")
    case = open_for(partner)  # the partner's status is still active
    assert case.is_open
    withdrawn = services.withdraw_case(
        actor=roles["cam"], case_id=case.pk, expected_state=case.state, reason="Rescinded"
    )
    again = open_for(reload(partner))
    assert again.pk != withdrawn.pk and again.is_open


def test_open_case_is_refused_for_a_partner_who_has_left(roles):
    case = case_at(roles, "done", money=False)
    partner = reload(case.partner)
    assert partner.status == PartnerStatus.OFFBOARDED
    before = counts()
    with pytest.raises(ActionRefused, match="not an active partner"):
        open_for(partner)
    assert counts() == before
    assert reload(partner).status == PartnerStatus.OFFBOARDED


@pytest.mark.parametrize("username", ["cam2", "salesops", "car", "portaladmin", "manager"])
def test_open_case_is_refused_for_anyone_but_the_partners_own_cam(roles, username):
    partner = PartnerFactory(cam=roles["cam"])
    before = counts()
    with pytest.raises(ActionRefused, match="partner's own CAM"):
        open_for(partner, actor=roles[username])
    assert counts() == before
    assert reload(partner).status == PartnerStatus.ACTIVE


def test_open_case_is_refused_for_a_cam_of_an_unmanaged_partner(roles):
    partner = PartnerFactory(cam=None)
    with pytest.raises(ActionRefused):
        open_for(partner, actor=roles["cam"])
    assert not Case.objects.filter(partner=partner).exists()


# ---------------------------------------------------------------------------------------
# Money on the table (step 7) and paying out (step 8)
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [PayoutStatus.OPEN, PayoutStatus.PENDING])
def test_step_7_nothing_owed_is_refused_while_payouts_are_outstanding(roles, status):
    case = case_at(roles, "step_7", money=False)
    PayoutFactory(partner=case.partner, status=status)
    before = counts()
    with pytest.raises(ActionRefused, match="money on the table"):
        complete(case, roles["car"], data={"money_on_table": False})
    assert counts() == before
    assert reload(case).state == "step_7"
    assert complete(case, roles["car"], data={"money_on_table": True}).state == "step_8"


def test_step_7_nothing_owed_is_accepted_when_payouts_are_paid_or_void(roles):
    case = case_at(roles, "step_7", money=False)
    PayoutFactory(partner=case.partner, status=PayoutStatus.PAID)
    PayoutFactory(partner=case.partner, status=PayoutStatus.VOID, void_reason="Duplicate")
    assert complete(case, roles["car"], data={"money_on_table": False}).state == "step_10"


def test_step_8_cannot_complete_while_a_payout_is_open(roles):
    case = case_at(roles, "step_8")
    first, second = case.outstanding_payouts().order_by("pk")
    before = counts()
    with pytest.raises(ActionRefused, match="still open or pending"):
        complete(case, roles["car"])
    assert counts() == before
    pay(case, first, roles["car"])
    pay(case, second, roles["car"], amount=Decimal("50.00"))  # partly paid: pending
    assert reload(second).status == PayoutStatus.PENDING
    with pytest.raises(ActionRefused, match="1 payout"):
        complete(case, roles["car"])
    assert reload(case).state == "step_8"
    pay(case, second, roles["car"], amount=second.amount - Decimal("50.00"), reference="ACH-2b")
    assert reload(second).status == PayoutStatus.PAID
    assert complete(case, roles["car"]).state == "step_9"


def test_step_8_counts_a_pending_payout_as_open_and_a_void_one_as_closed(roles):
    partner = PartnerFactory(cam=roles["cam"])
    pending = PayoutFactory(partner=partner, status=PayoutStatus.PENDING)
    case = CaseFactory(partner=partner, state="step_8", actors=roles)
    assert case.state == "step_8"
    with pytest.raises(ActionRefused):
        complete(case, roles["car"])
    Payout.objects.filter(pk=pending.pk).update(status=PayoutStatus.VOID, void_reason="Error")
    assert complete(case, roles["car"]).state == "step_9"


# ---------------------------------------------------------------------------------------
# Four eyes on step 9 (Decision B)
# ---------------------------------------------------------------------------------------


def _case_paid_by(roles, payer):
    case = case_at(roles, "step_8")
    for payout in case.outstanding_payouts():
        pay(case, payout, payer)
    return complete(case, payer)


def test_the_car_user_who_paid_cannot_verify_step_9(roles):
    case = _case_paid_by(roles, roles["car"])
    assert case.state == "step_9"
    before = counts()
    with pytest.raises(ActionRefused, match="another CAR member") as refused:
        complete(case, roles["car"])
    assert not isinstance(refused.value, CaseMovedOn)
    assert counts() == before
    assert reload(case).state == "step_9"


def test_a_different_car_user_can_verify_step_9(roles):
    case = _case_paid_by(roles, roles["car"])
    case = complete(case, roles["car2"])
    assert case.state == "step_10"
    assert case.events.get(step_number=9).actor == roles["car2"]


def test_every_payer_is_excluded_from_verifying(roles):
    case = case_at(roles, "step_8")
    first, second = case.outstanding_payouts().order_by("pk")
    pay(case, first, roles["car"])
    pay(case, second, roles["car2"])
    case = complete(case, roles["car"])
    for payer in ("car", "car2"):
        with pytest.raises(ActionRefused, match="another CAR member"):
            complete(case, roles[payer])
    car3 = UserFactory(username="car3", role=Role.CAR)
    assert complete(case, car3).state == "step_10"


def test_step_9_is_refused_when_a_payout_is_outstanding_again(roles):
    case = _case_paid_by(roles, roles["car"])
    PayoutFactory(partner=case.partner)  # a late commission lands before verification
    with pytest.raises(ActionRefused, match="still open or pending"):
        complete(case, roles["car2"])
    assert reload(case).state == "step_9"


def test_step_9_refusal_for_a_user_outside_car_does_not_claim_they_paid(roles):
    """The refusal message says why: a Sales Ops user recorded no payment, so telling
    them 'you recorded payments here' is wrong; they are simply not in the CAR lane."""
    case = _case_paid_by(roles, roles["car"])
    with pytest.raises(ActionRefused) as refused:
        complete(case, roles["salesops"])
    assert "you recorded payments" not in str(refused.value)
    assert "CAR" in str(refused.value)


# ---------------------------------------------------------------------------------------
# record_payment
# ---------------------------------------------------------------------------------------


@pytest.fixture
def paying(roles):
    """A case at step 8 with two open payouts (250.00 USD and 99.99 EUR)."""
    case = case_at(roles, "step_8")
    first, second = case.outstanding_payouts().order_by("pk")
    return case, first, second


def _payment_state():
    return (
        list(Payment.objects.order_by("pk").values_list("pk", "amount")),
        list(Payout.objects.order_by("pk").values_list("pk", "status")),
        CaseEvent.objects.count(),
    )


def test_record_payment_pays_a_payout_in_full_and_records_an_event(roles, paying):
    case, first, _ = paying
    payment = pay(case, first, roles["car"], amount=Decimal("100.00"), reference="ACH-1")
    assert reload(first).status == PayoutStatus.PENDING  # partly paid
    pay(case, first, roles["car"], amount=Decimal("150.00"), reference="ACH-2")
    assert reload(first).status == PayoutStatus.PAID
    assert payment.recorded_by == roles["car"] and payment.case_id == case.pk
    assert payment.currency == first.currency


def test_overpayment_is_refused(roles, paying):
    case, first, _ = paying
    before = _payment_state()
    with pytest.raises(ActionRefused, match="more than"):
        pay(case, first, roles["car"], amount=first.amount + Decimal("0.01"))
    assert _payment_state() == before
    pay(case, first, roles["car"], amount=Decimal("200.00"), reference="ACH-1")
    before = _payment_state()
    with pytest.raises(ActionRefused, match="more than"):
        pay(case, first, roles["car"], amount=Decimal("50.01"), reference="ACH-2")
    assert _payment_state() == before


@pytest.mark.parametrize("reference", ["ACH-1", "  ACH-1  "])
def test_a_payment_reference_is_recorded_once_only(roles, paying, reference):
    case, first, second = paying
    pay(case, first, roles["car"], amount=Decimal("10.00"), reference="ACH-1")
    before = _payment_state()
    with pytest.raises(ActionRefused, match="already recorded"):
        pay(case, second, roles["car"], amount=Decimal("10.00"), reference=reference)
    assert _payment_state() == before


@pytest.mark.parametrize("amount", [Decimal("0"), Decimal("0.00"), Decimal("-5.00"), 10.0, "ten"])
def test_a_non_positive_or_non_decimal_amount_is_refused(roles, paying, amount):
    case, first, _ = paying
    before = _payment_state()
    with pytest.raises(ActionRefused, match="positive decimal"):
        pay(case, first, roles["car"], amount=amount)
    assert _payment_state() == before


def test_a_payout_of_another_partner_is_refused(roles, paying):
    case, _, _ = paying
    foreign = PayoutFactory(partner=PartnerFactory())
    before = _payment_state()
    with pytest.raises(ActionRefused, match="does not belong"):
        pay(case, foreign, roles["car"])
    assert _payment_state() == before


def test_a_paid_payout_cannot_be_paid_again(roles, paying):
    case, first, _ = paying
    pay(case, first, roles["car"])
    before = _payment_state()
    with pytest.raises(ActionRefused, match="already paid"):
        pay(case, first, roles["car"], reference="ACH-again")
    assert _payment_state() == before


@pytest.mark.parametrize("username", ["cam", "salesops", "portaladmin", "manager", "nobody"])
def test_only_car_can_record_payments(roles, paying, username):
    case, first, _ = paying
    before = _payment_state()
    with pytest.raises(ActionRefused, match="Only CAR"):
        pay(case, first, roles[username])
    assert _payment_state() == before


def test_payments_are_recorded_only_during_step_8(roles):
    case = case_at(roles, "step_7")
    payout = case.outstanding_payouts().first()
    before = _payment_state()
    with pytest.raises(CaseMovedOn):
        pay(case, payout, roles["car"])
    assert _payment_state() == before


# ---------------------------------------------------------------------------------------
# The append-only history
# ---------------------------------------------------------------------------------------


def test_case_events_cannot_be_changed_or_deleted_through_the_orm(roles):
    case = open_for(PartnerFactory(cam=roles["cam"]))
    event = case.events.order_by("pk").last()
    event.note = "rewritten"
    with pytest.raises(ImmutableRowError):
        event.save()
    with pytest.raises(ImmutableRowError):
        event.delete()
    stored = CaseEvent.objects.get(pk=event.pk)
    assert stored.note == ""


@pytest.mark.postgres
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE offboarding_caseevent SET note = 'rewritten' WHERE id = %s",
        "DELETE FROM offboarding_caseevent WHERE id = %s",
    ],
)
def test_postgres_refuses_raw_changes_to_case_events(roles, sql):
    assert connection.vendor == "postgresql"
    case = open_for(PartnerFactory(cam=roles["cam"]))
    event = case.events.order_by("pk").last()
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql, [event.pk])
    assert CaseEvent.objects.filter(pk=event.pk, note="").exists()


@pytest.mark.postgres
def test_postgres_refuses_queryset_updates_of_case_events(roles):
    assert connection.vendor == "postgresql"
    case = open_for(PartnerFactory(cam=roles["cam"]))
    with pytest.raises(DatabaseError), transaction.atomic():
        CaseEvent.objects.filter(case=case).update(note="rewritten")
    assert not CaseEvent.objects.filter(note="rewritten").exists()


def test_events_record_actor_states_step_and_data_with_iso_dates(roles):
    partner = PartnerFactory(cam=roles["cam"])
    case = open_for(partner)
    opened, step_1 = case.events.order_by("pk")
    assert (opened.kind, opened.actor, opened.from_state, opened.to_state) == (
        "opened",
        roles["cam"],
        "",
        "step_2",
    )
    assert (step_1.kind, step_1.step_number, step_1.from_state, step_1.to_state) == (
        "step_completed",
        1,
        "step_1",
        "step_2",
    )
    assert step_1.actor == roles["cam"]
    assert step_1.data == {
        "initiated_by": "company",
        "reason": "revenue_minimum",
        "reason_detail": "",
        "request_received_on": "2026-03-02",
        "request_channel": "internal_review",
    }
    assert step_1.created_at is not None

    case = complete(
        case, roles["cam"], data={"legal_action": False, "notice_date": dt.date(2026, 3, 3)}
    )
    step_2 = case.events.get(step_number=2)
    assert (step_2.actor, step_2.from_state, step_2.to_state) == (roles["cam"], "step_2", "step_4")
    assert step_2.data == {"legal_action": False, "notice_date": "2026-03-03"}

    case = complete(case, roles["cam"])
    case = complete(case, roles["salesops"])
    licence = case.partner.licences.get(is_membership=True)
    case = complete(case, roles["salesops"])
    step_6 = case.events.get(step_number=6)
    assert step_6.actor == roles["salesops"]
    assert step_6.data == {"licence": {"id": licence.pk, "label": str(licence)}}


def test_payment_and_withdrawal_events_are_recorded(roles, paying):
    case, first, _ = paying
    pay(case, first, roles["car"], amount=Decimal("12.50"), reference="ACH-9")
    event = case.events.filter(kind="payment_recorded").get()
    assert (event.actor, event.step_number, event.from_state, event.to_state) == (
        roles["car"],
        8,
        "step_8",
        "step_8",
    )
    assert event.data == {
        "payout": first.reference,
        "amount": "12.50",
        "currency": "USD",
        "paid_on": "2026-03-02",
        "method": "ach",
        "reference": "ACH-9",
        "override": "",
        "override_approved_by": "",
    }

    other = open_for(PartnerFactory(cam=roles["cam"]))
    services.withdraw_case(
        actor=roles["manager"], case_id=other.pk, expected_state="step_2", reason="Reversed"
    )
    event = other.events.filter(kind="withdrawn").get()
    assert (event.actor, event.from_state, event.to_state, event.data) == (
        roles["manager"],
        "step_2",
        "withdrawn",
        {"reason": "Reversed"},
    )


# ---------------------------------------------------------------------------------------
# Notifications
# ---------------------------------------------------------------------------------------


ASSIGNMENT_KINDS = [NotificationKind.STEP_ASSIGNED, NotificationKind.PAYOUT_TO_VERIFY]


def _assigned_since(case, last_pk):
    """Who was told a step became theirs (step 9's notice is 'payouts ready to verify')."""
    return set(
        Notification.objects.filter(
            case=case, kind__in=ASSIGNMENT_KINDS, pk__gt=last_pk
        ).values_list("recipient__username", flat=True)
    )


def _last_pk():
    return Notification.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def test_each_step_assigns_the_next_lane(roles):
    """Beta partner with money owed, company notice path: after each step, the users of
    the next step's lane are told, except the person who just acted (they know)."""
    partner = PartnerFactory(cam=roles["cam"], beta=True)
    PayoutFactory(partner=partner)
    admin = UserFactory(username="admin", is_superuser=True, is_staff=True)
    mark = _last_pk()
    case = open_for(partner, actor=admin)  # opened by someone other than the CAM
    assert case.state == "step_2"
    assert _assigned_since(case, mark) == {"cam"}  # the partner's own CAM, not cam2
    # (actor, resulting state, the next lane's users per the spec)
    expected_after = [
        ("cam", "step_4", {"cam"}),
        ("cam", "step_5", {"salesops"}),
        ("salesops", "step_6", {"salesops"}),
        ("salesops", "step_7", {"car", "car2"}),
        ("car", "step_8", {"car", "car2"}),
        ("car", "step_9", {"car2"}),  # Decision B: never the payer
        ("car2", "step_10", {"cam"}),
        ("cam", "step_11", {"car", "car2"}),
        ("car", "step_12", {"portaladmin"}),
        ("portaladmin", "step_13", {"portaladmin"}),
    ]
    for actor, state, lane_users in expected_after:
        if case.state == "step_8":
            for payout in case.outstanding_payouts():
                pay(case, payout, roles["car"])
        mark = _last_pk()
        case = complete(case, roles[actor])
        assert case.state == state
        assert _assigned_since(case, mark) == lane_users - {actor}, state
    mark = _last_pk()
    case = complete(case, roles["portaladmin"])
    assert case.state == "done"
    assert _assigned_since(case, mark) == set()
    closed = Notification.objects.filter(case=case, kind=NotificationKind.CASE_CLOSED)
    assert set(closed.values_list("recipient__username", flat=True)) == {"cam", "manager"}


def test_step_9_is_assigned_to_car_members_who_did_not_pay(roles):
    car3 = UserFactory(username="car3", role=Role.CAR)
    case = case_at(roles, "step_8")
    for payout in case.outstanding_payouts():
        pay(case, payout, roles["car"])
    mark = _last_pk()
    case = complete(case, car3)  # a CAR member who paid nothing closes step 8
    assert case.state == "step_9"
    assert _assigned_since(case, mark) == {"car2"}  # not car (paid), not car3 (acted)
    told = Notification.objects.filter(case=case, pk__gt=mark, kind__in=ASSIGNMENT_KINDS)
    assert set(told.values_list("kind", flat=True)) == {NotificationKind.PAYOUT_TO_VERIFY}
    assert not told.filter(recipient=roles["car"]).exists()


def test_the_legal_branch_still_assigns_sales_ops_at_step_5(roles):
    case = open_for(PartnerFactory(cam=roles["cam"]))
    mark = _last_pk()
    case = complete(case, roles["cam"], data={"legal_action": True, "notice_date": TODAY})
    assert case.state == "step_5"  # step 4 (the CAM's hand-off) was skipped
    assert _assigned_since(case, mark) == {"salesops"}
    titles = Notification.objects.filter(case=case, pk__gt=mark).values_list("title", flat=True)
    assert all(title.startswith("Step 5") for title in titles)


def test_the_voluntary_branch_assigns_the_partners_cam_at_step_3(roles):
    admin = UserFactory(username="admin", is_superuser=True, is_staff=True)
    mark = _last_pk()
    case = open_for(PartnerFactory(cam=roles["cam"]), actor=admin, company=False)
    assert case.state == "step_3"
    assert _assigned_since(case, mark) == {"cam"}  # not cam2, who manages other partners


def test_a_refused_step_notifies_nobody(roles):
    case = case_at(roles, "step_8")
    before = Notification.objects.count()
    with pytest.raises(ActionRefused):
        complete(case, roles["car"])  # payouts still open
    assert Notification.objects.count() == before


def test_a_rolled_back_transaction_leaves_no_notification(roles):
    case = case_at(roles, "step_4", money=False)
    before = counts()

    class Boom(Exception):
        pass

    with pytest.raises(Boom), transaction.atomic():
        moved = complete(case, roles["cam"])
        assert moved.state == "step_5"
        assert Notification.objects.count() > before["Notification"]  # salesops told
        raise Boom
    assert counts() == before
    assert reload(case).state == "step_4"


def test_a_rolled_back_open_case_leaves_no_notification(roles):
    partner = PartnerFactory(cam=roles["cam"])
    before = counts()

    class Boom(Exception):
        pass

    with pytest.raises(Boom), transaction.atomic():
        open_for(partner)
        assert Notification.objects.count() > before["Notification"]
        raise Boom
    assert counts() == before
    assert reload(partner).status == PartnerStatus.ACTIVE


def test_manager_is_told_when_a_case_opens_and_the_opener_is_not(roles):
    mark = _last_pk()
    case = open_for(PartnerFactory(cam=roles["cam"]))
    opened = Notification.objects.filter(case=case, kind=NotificationKind.CASE_OPENED, pk__gt=mark)
    assert set(opened.values_list("recipient__username", flat=True)) == {"manager"}
    assert timezone.now() >= opened.get().created_at
