"""Every allowed and refused transition of the offboarding case, from every state.

The expected tables below are written from the specification
(shared/design/offboarding-process.md), not read back from `offboarding.process`, so a
change to the process data that departs from the spec makes these tests fail.
"""

import datetime as dt

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from django_fsm import can_proceed

from notifications.models import Notification
from offboarding import services
from offboarding.demo import drive, request_data, step_data, step_evidence
from offboarding.forms import ResignationForm
from offboarding.models import Case, CaseEvent, EvidenceFile
from offboarding.money.services import record_payment
from offboarding.process import CaseState
from offboarding.services import ActionRefused, CaseMovedOn
from partners.models import (
    Licence,
    LicenceStatus,
    Partner,
    PartnerStatus,
    ReferralLink,
    ReferralLinkStatus,
)
from payouts.models import Payment, Payout
from tests.factories import CaseFactory, PartnerFactory, PayoutFactory

# ---------------------------------------------------------------------------------------
# The spec, restated as tables
# ---------------------------------------------------------------------------------------

ALL_STATES = [
    "step_1",
    "step_2",
    "step_3",
    "step_4",
    "step_5",
    "step_6",
    "step_7",
    "step_8",
    "step_9",
    "step_10",
    "step_11",
    "step_12",
    "step_13",
    "done",
    "withdrawn",
]

# The Case method that completes each step (spec "Steps" table, one method per step).
STEP_METHOD = {
    1: "record_request",
    2: "record_company_removal",
    3: "record_resignation",
    4: "confirm_sales_ops_handoff",
    5: "update_partner_record",
    6: "suspend_membership_licence",
    7: "assess_money_on_table",
    8: "close_payouts",
    9: "verify_payouts",
    10: "confirm_portal",
    11: "notify_portal_admin",
    12: "deactivate_referral_links",
    13: "confirm_removal",
}
METHODS = [*STEP_METHOD.values(), "withdraw"]

# Branch column of the spec: the states each step may lead to.
STEP_TARGETS = {
    1: {"step_2", "step_3"},  # company -> 2, partner -> 3 (Decision on step 1's labels)
    2: {"step_4", "step_5"},  # notice -> 4, legal -> 5
    3: {"step_4"},
    4: {"step_5"},
    5: {"step_6"},
    6: {"step_7"},
    7: {"step_8", "step_10"},  # Decision A: "no" goes to 10, never to Done
    8: {"step_9"},
    9: {"step_10"},
    10: {"step_11", "done"},  # beta -> 11, legacy -> Done
    11: {"step_12"},
    12: {"step_13"},
    13: {"done"},
}
# "A case can be withdrawn ... until step 5 is completed."
SPEC_WITHDRAWABLE = {"step_1", "step_2", "step_3", "step_4", "step_5"}


def _spec_table() -> dict[str, dict[str, set[str]]]:
    table: dict[str, dict[str, set[str]]] = {state: {} for state in ALL_STATES}
    for number, method in STEP_METHOD.items():
        table[f"step_{number}"][method] = STEP_TARGETS[number]
    for state in SPEC_WITHDRAWABLE:
        table[state]["withdraw"] = {"withdrawn"}
    return table


SPEC = _spec_table()

# The lane column of the spec, as the `roles` users who may complete each step. Partner
# steps are recorded by the partner's own CAM ("cam"; "cam2" manages other partners).
# Step 9 excludes "car" because in these cases "car" recorded the step-8 payments
# (Decision B).
SPEC_PERFORMERS = {
    "step_2": {"cam"},
    "step_3": {"cam"},
    "step_4": {"cam"},
    "step_5": {"salesops"},
    "step_6": {"salesops"},
    "step_7": {"car", "car2"},
    "step_8": {"car", "car2"},
    "step_9": {"car2"},
    "step_10": {"cam"},
    "step_11": {"car", "car2"},
    "step_12": {"portaladmin"},
    "step_13": {"portaladmin"},
}
STEP_ACTOR = {
    1: "cam",
    2: "cam",
    3: "cam",
    4: "cam",
    5: "salesops",
    6: "salesops",
    7: "car",
    8: "car",
    9: "car2",
    10: "cam",
    11: "car",
    12: "portaladmin",
    13: "portaladmin",
}
# States a real case can rest in (step 1 is transient: open_case records it at once).
RESTING_STATES = ALL_STATES[1:]


# ---------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------


def make_case(roles, state):
    """A real case at `state`, reached through the services. Cases at 8/9 owe money;
    cases past step 10 are on the beta portal; step 3 is the voluntary path."""
    if state == "step_3":
        return CaseFactory(state=state, company=False, actors=roles)
    beta = state in {"step_11", "step_12", "step_13", "done"}
    partner = PartnerFactory(cam=roles["cam"], beta=beta)
    return CaseFactory(partner=partner, state=state, money=True, actors=roles)


def reload(case) -> Case:
    return Case.objects.select_related("partner").get(pk=case.pk)


def snapshot(case) -> dict:
    """Everything a step can write, for 'nothing changed' assertions."""
    partner_id = Case.objects.get(pk=case.pk).partner_id
    return {
        "case": Case.objects.filter(pk=case.pk).values().get(),
        "partner": Partner.objects.filter(pk=partner_id).values().get(),
        "licences": list(Licence.objects.filter(partner_id=partner_id).order_by("pk").values()),
        "links": list(ReferralLink.objects.filter(partner_id=partner_id).order_by("pk").values()),
        "payouts": list(Payout.objects.filter(partner_id=partner_id).order_by("pk").values()),
        "payments": list(Payment.objects.order_by("pk").values_list("pk", flat=True)),
        "events": list(CaseEvent.objects.order_by("pk").values_list("pk", flat=True)),
        "notifications": list(Notification.objects.order_by("pk").values_list("pk", flat=True)),
    }


def plausible_data(case, number: int) -> dict:
    """Data a step-`number` form could deliver, whatever state the case is in."""
    today = timezone.localdate()
    partner = Partner.objects.get(pk=case.partner_id)
    if number == 1:
        return request_data(company=True, received_on=today)
    if number == 2:
        return {"legal_action": False, "notice_date": today}
    if number == 3:
        return {"notice_date": today, "requested_exit_date": today + dt.timedelta(days=40)}
    if number == 5:
        return {"status_reason_reference": "QB-1"}
    if number == 6:
        return {"licence": partner.licences.get(is_membership=True)}
    if number == 7:
        return {"money_on_table": True}
    if number == 10:
        return {"portal": partner.portal}
    if number == 12:
        return {"links_deactivated": 0, "link_codes": []}
    return {}


def complete(case, actor, data=None, **kwargs):
    """Complete the case's active step as `actor` with the data (and the files) its form
    would deliver."""
    data = step_data(case, **kwargs) if data is None else data
    return services.complete_step(
        actor=actor,
        case_id=case.pk,
        step_number=case.current_step.number,
        expected_state=case.state,
        data=data,
        evidence=step_evidence(case, legal=bool(data.get("legal_action"))),
    )


def pay_everything(case, actor):
    for payout in case.outstanding_payouts():
        record_payment(
            actor=actor,
            case_id=case.pk,
            payout_id=payout.pk,
            amount=payout.amount,
            paid_on=timezone.localdate(),
            reference=f"ACH-{payout.reference}",
        )


def step_numbers(case) -> list[int]:
    return list(
        CaseEvent.objects.filter(case=case, kind="step_completed")
        .order_by("pk")
        .values_list("step_number", flat=True)
    )


def open_for(partner, *, company=True, received_on=None):
    return services.open_case(
        actor=partner.cam,
        partner_id=partner.pk,
        data=request_data(
            company=company, received_on=received_on or timezone.localdate() - dt.timedelta(1)
        ),
    )


# ---------------------------------------------------------------------------------------
# 1. The state machine's table, on in-memory cases
# ---------------------------------------------------------------------------------------


def test_case_declares_exactly_the_transitions_of_the_spec():
    declared = {t.name for t in Case._meta.get_field("state").get_all_transitions(Case)}
    assert declared == set(METHODS)


def test_case_states_are_the_spec_states():
    assert {choice.value for choice in CaseState} == set(ALL_STATES)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("state", ALL_STATES)
def test_fsm_allows_a_transition_iff_the_spec_does(state, method):
    case = Case(state=state)
    expected = method in SPEC[state]
    assert can_proceed(getattr(case, method), check_conditions=False) is expected, (
        f"{method} from {state}: spec says {'allowed' if expected else 'refused'}"
    )


@pytest.mark.parametrize(
    ("state", "method"),
    [(state, method) for state in ALL_STATES for method in SPEC[state]],
)
def test_each_allowed_transition_leads_only_where_the_spec_says(state, method):
    transition = getattr(Case, method)._django_fsm.get_transition(state)
    target = transition.target
    declared = getattr(target, "allowed_states", None) or [target]
    assert {str(s) for s in declared} == SPEC[state][method]


@pytest.mark.django_db
@pytest.mark.parametrize("state", ALL_STATES)
def test_available_transitions_match_the_spec_when_nothing_is_owed(state):
    # Nothing owed, and the partner already gone from every system (Decision C's facts),
    # so the conditions of Done hold too; tests/test_end_state.py refuses each missing fact.
    partner = PartnerFactory(
        opted_out=True,
        in_distribution_group=False,
        landing_page_access=False,
        status_reason="Revenue minimum not met",
        offboard_date=timezone.localdate(),
    )
    partner.licences.update(status="suspended")
    case = Case(partner=partner, state=state)
    available = {t.name for t in case.get_available_state_transitions()}
    assert available == set(SPEC[state])


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("state", "method"), [("step_8", "close_payouts"), ("step_9", "verify_payouts")]
)
def test_payout_steps_are_unavailable_while_a_payout_is_outstanding(state, method):
    partner = PartnerFactory()
    PayoutFactory(partner=partner)
    case = Case(partner=partner, state=state)
    assert can_proceed(getattr(case, method), check_conditions=False)
    assert not can_proceed(getattr(case, method))
    assert method not in {t.name for t in case.get_available_state_transitions()}


# ---------------------------------------------------------------------------------------
# 2. The same table through services.complete_step, on real cases
# ---------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("state", RESTING_STATES)
def test_completing_any_other_step_raises_case_moved_on_and_changes_nothing(roles, state):
    case = make_case(roles, state)
    assert case.state == state
    before = snapshot(case)
    for number in range(1, 14):
        if f"step_{number}" == state:
            continue
        # The form for step N (expected state step_N) and a forged step number on a form
        # rendered for the case's real state: both are refused, nothing is written.
        for expected_state in (f"step_{number}", state):
            with pytest.raises(CaseMovedOn):
                services.complete_step(
                    actor=roles[STEP_ACTOR[number]],
                    case_id=case.pk,
                    step_number=number,
                    expected_state=expected_state,
                    data=plausible_data(case, number),
                )
            assert snapshot(case) == before, f"step {number} from {state} changed something"


@pytest.mark.django_db
@pytest.mark.parametrize("state", list(SPEC_PERFORMERS))
def test_a_stale_form_for_the_active_step_raises_case_moved_on(roles, state):
    case = make_case(roles, state)
    before = snapshot(case)
    stale = "step_1" if state != "step_1" else "step_2"
    with pytest.raises(CaseMovedOn):
        services.complete_step(
            actor=roles[sorted(SPEC_PERFORMERS[state])[0]],
            case_id=case.pk,
            step_number=case.current_step.number,
            expected_state=stale,
            data=step_data(case),
        )
    assert snapshot(case) == before


@pytest.mark.django_db
@pytest.mark.parametrize("state", list(SPEC_PERFORMERS))
def test_only_the_spec_lane_can_complete_the_active_step(roles, state):
    case = make_case(roles, state)
    method = getattr(case, STEP_METHOD[case.current_step.number])
    before = snapshot(case)
    for username, user in roles.items():
        allowed = username in SPEC_PERFORMERS[state]
        assert method._django_fsm.has_transition_perm(case, state, user) is allowed, username
        if allowed:
            continue
        with pytest.raises(ActionRefused) as refused:
            complete(case, user)
        assert not isinstance(refused.value, CaseMovedOn), username
        assert snapshot(case) == before, f"{username} changed the case at {state}"
    # And one of the spec's performers actually completes it.
    if state == "step_8":
        pay_everything(case, roles["car"])
    performer = roles[sorted(SPEC_PERFORMERS[state])[0]]
    moved = complete(case, performer)
    assert moved.state in STEP_TARGETS[int(state.removeprefix("step_"))]


# ---------------------------------------------------------------------------------------
# 3. Step 1 (open_case) and every branch
# ---------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(("company", "landing"), [(True, "step_2"), (False, "step_3")])
def test_open_case_records_step_1_and_takes_the_branch(roles, company, landing):
    partner = PartnerFactory(cam=roles["cam"])
    case = open_for(partner, company=company)
    assert reload(case).state == landing
    assert not Case.objects.filter(state="step_1").exists()  # step 1 is never at rest
    events = list(case.events.order_by("pk"))
    assert [(e.kind, e.step_number, e.from_state, e.to_state) for e in events] == [
        ("opened", None, "", landing),
        ("step_completed", 1, "step_1", landing),
    ]
    assert Partner.objects.get(pk=partner.pk).status == PartnerStatus.OFFBOARDING


@pytest.mark.django_db
def test_voluntary_path_goes_1_3_4(roles):
    case = open_for(PartnerFactory(cam=roles["cam"]), company=False)
    assert case.state == "step_3"
    case = complete(case, roles["cam"])
    assert case.state == "step_4"
    assert step_numbers(case) == [1, 3]


@pytest.mark.django_db
def test_involuntary_notice_path_goes_1_2_4(roles):
    case = open_for(PartnerFactory(cam=roles["cam"]), company=True)
    assert case.state == "step_2"
    case = complete(case, roles["cam"], legal=False)
    assert case.state == "step_4"
    assert case.legal_action is False
    assert step_numbers(case) == [1, 2]


@pytest.mark.django_db
def test_legal_path_goes_1_2_5_skipping_step_4(roles):
    case = open_for(PartnerFactory(cam=roles["cam"]), company=True)
    case = complete(case, roles["cam"], legal=True)
    assert case.state == "step_5"
    assert case.legal_action is True
    assert step_numbers(case) == [1, 2]


@pytest.mark.django_db
def test_money_path_goes_7_8_9_10(roles):
    case = make_case(roles, "step_7")
    assert case.outstanding_payouts().exists()
    case = complete(case, roles["car"], data={"money_on_table": True})
    assert case.state == "step_8"
    pay_everything(case, roles["car"])
    case = complete(case, roles["car"])
    assert case.state == "step_9"
    case = complete(case, roles["car2"])
    assert case.state == "step_10"
    assert step_numbers(case)[-4:] == [6, 7, 8, 9]


@pytest.mark.django_db
def test_no_money_path_goes_7_10(roles):
    partner = PartnerFactory(cam=roles["cam"])
    case = CaseFactory(partner=partner, state="step_7", actors=roles)
    case = complete(case, roles["car"], data={"money_on_table": False})
    assert case.state == "step_10"  # Decision A: not Done
    assert case.money_on_table is False
    assert 8 not in step_numbers(case) and 9 not in step_numbers(case)


@pytest.mark.django_db
def test_beta_path_goes_10_11_12_13_done(roles):
    partner = PartnerFactory(cam=roles["cam"], beta=True)
    case = CaseFactory(partner=partner, state="step_10", actors=roles)
    case = complete(case, roles["cam"])
    assert case.state == "step_11"
    case = complete(case, roles["car"])
    assert case.state == "step_12"
    case = complete(case, roles["portaladmin"])
    assert case.state == "step_13"
    case = complete(case, roles["portaladmin"])
    assert case.state == "done"
    assert step_numbers(case) == [1, 2, 4, 5, 6, 7, 10, 11, 12, 13]


@pytest.mark.django_db
def test_legacy_path_goes_10_done(roles):
    partner = PartnerFactory(cam=roles["cam"])
    case = CaseFactory(partner=partner, state="step_10", actors=roles)
    case = complete(case, roles["cam"])
    assert case.state == "done"
    assert case.closed_at is not None
    assert step_numbers(case)[-1] == 10
    assert Partner.objects.get(pk=partner.pk).status == PartnerStatus.OFFBOARDED


# ---------------------------------------------------------------------------------------
# 4. Withdrawal
# ---------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("state", ["step_2", "step_3", "step_4", "step_5"])
def test_withdrawal_is_allowed_until_step_5_is_completed(roles, state):
    case = make_case(roles, state)
    partner_before = Partner.objects.filter(pk=case.partner_id).values().get()
    case = services.withdraw_case(
        actor=roles["cam"], case_id=case.pk, expected_state=state, reason="Partner rescinded"
    )
    case = reload(case)
    assert case.state == "withdrawn"
    assert case.withdrawal_reason == "Partner rescinded"
    assert case.closed_at is not None
    partner = Partner.objects.filter(pk=case.partner_id).values().get()
    assert partner["status"] == PartnerStatus.ACTIVE
    # Nothing else about the partner changed: they never left any system.
    for field in ("opted_out", "in_distribution_group", "landing_page_access", "offboard_date"):
        assert partner[field] == partner_before[field]
    last = case.events.order_by("pk").last()
    assert (last.kind, last.from_state, last.to_state) == ("withdrawn", state, "withdrawn")


@pytest.mark.django_db
@pytest.mark.parametrize("state", [s for s in RESTING_STATES if s not in SPEC_WITHDRAWABLE])
def test_withdrawal_is_refused_from_step_6_on_and_when_closed(roles, state):
    case = make_case(roles, state)
    before = snapshot(case)
    for actor in (roles["cam"], roles["manager"]):
        with pytest.raises(ActionRefused):
            services.withdraw_case(
                actor=actor, case_id=case.pk, expected_state=state, reason="Too late"
            )
        assert snapshot(case) == before


@pytest.mark.django_db
def test_withdrawal_by_someone_who_may_not_is_refused(roles):
    case = make_case(roles, "step_2")
    before = snapshot(case)
    for username in ("cam2", "salesops", "car", "portaladmin", "nobody"):
        with pytest.raises(ActionRefused):
            services.withdraw_case(
                actor=roles[username], case_id=case.pk, expected_state="step_2", reason="x"
            )
        assert snapshot(case) == before, username
    with pytest.raises(ActionRefused):
        services.withdraw_case(
            actor=roles["cam"], case_id=case.pk, expected_state="step_2", reason="  "
        )
    assert snapshot(case) == before
    case = services.withdraw_case(
        actor=roles["manager"], case_id=case.pk, expected_state="step_2", reason="Reversed"
    )
    assert case.state == "withdrawn"


# ---------------------------------------------------------------------------------------
# 5. Side effects on the partner
# ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_partner_status_goes_active_offboarding_offboarded(roles):
    partner = PartnerFactory(cam=roles["cam"])
    assert partner.status == PartnerStatus.ACTIVE
    case = open_for(partner)
    assert Partner.objects.get(pk=partner.pk).status == PartnerStatus.OFFBOARDING
    case = drive(case, until="step_10", actors=roles)
    assert Partner.objects.get(pk=partner.pk).status == PartnerStatus.OFFBOARDING
    case = drive(case, until="done", actors=roles)
    partner = Partner.objects.get(pk=partner.pk)
    assert partner.status == PartnerStatus.OFFBOARDED
    assert partner.offboard_date == case.offboard_date


@pytest.mark.django_db
def test_step_5_updates_the_partner_record(roles):
    case = make_case(roles, "step_5")
    partner = Partner.objects.get(pk=case.partner_id)
    assert (partner.opted_out, partner.in_distribution_group, partner.landing_page_access) == (
        False,
        True,
        True,
    )
    assert partner.offboard_date is None
    case = complete(case, roles["salesops"])
    partner = Partner.objects.get(pk=case.partner_id)
    assert partner.opted_out is True  # 5B
    assert partner.in_distribution_group is False  # 5C
    assert partner.landing_page_access is False  # 5D
    assert partner.offboard_date == case.offboard_date is not None  # 5A
    assert partner.status_reason  # 5A: reason for removal
    assert partner.status == PartnerStatus.OFFBOARDING


@pytest.mark.django_db
def test_step_6_suspends_the_membership_licence_only(roles):
    case = make_case(roles, "step_6")
    other_licence = Licence.objects.create(
        partner_id=case.partner_id, sku="QBA-1", product_name="Accountant Desktop"
    )
    bystander = PartnerFactory()
    case = complete(case, roles["salesops"])
    assert case.state == "step_7"
    membership = Licence.objects.get(partner_id=case.partner_id, is_membership=True)
    assert membership.status == LicenceStatus.SUSPENDED
    assert membership.suspended_at is not None
    other_licence.refresh_from_db()
    assert other_licence.status == LicenceStatus.ACTIVE
    assert bystander.licences.get(is_membership=True).status == LicenceStatus.ACTIVE


@pytest.mark.django_db
def test_step_6_refuses_a_licence_of_another_partner(roles):
    """Step 6 suspends *this* partner's membership SKU; a licence of another partner (a
    forged or mistaken form value) must not be suspended."""
    case = make_case(roles, "step_6")
    bystander = PartnerFactory()
    foreign = bystander.licences.get(is_membership=True)
    with pytest.raises(ActionRefused):
        complete(case, roles["salesops"], data={"licence": foreign})
    foreign.refresh_from_db()
    assert foreign.status == LicenceStatus.ACTIVE
    assert reload(case).state == "step_6"


@pytest.mark.django_db
def test_step_6_refuses_a_licence_that_is_not_the_membership_sku(roles):
    """Spec step 6: 'set the $0 membership SKU from active to suspended'. Suspending a
    product licence instead would leave the partner's membership active."""
    case = make_case(roles, "step_6")
    product = Licence.objects.create(
        partner_id=case.partner_id, sku="QBA-1", product_name="Accountant Desktop"
    )
    with pytest.raises(ActionRefused):
        complete(case, roles["salesops"], data={"licence": product})
    product.refresh_from_db()
    assert product.status == LicenceStatus.ACTIVE
    assert reload(case).state == "step_6"


@pytest.mark.django_db
def test_step_12_deactivates_every_referral_link_of_the_partner(roles):
    case = make_case(roles, "step_12")
    ReferralLink.objects.create(
        partner_id=case.partner_id, code="second-link", target_url="https://example.com/2"
    )
    bystander = PartnerFactory(beta=True)
    assert case.partner.referral_links.filter(status=ReferralLinkStatus.ACTIVE).count() == 2
    case = complete(case, roles["portaladmin"])
    assert case.state == "step_13"
    links = ReferralLink.objects.filter(partner_id=case.partner_id)
    assert links.count() == 2  # deactivated, not deleted
    assert set(links.values_list("status", flat=True)) == {ReferralLinkStatus.DEACTIVATED}
    assert all(link.deactivated_at for link in links)
    assert bystander.referral_links.get().status == ReferralLinkStatus.ACTIVE


@pytest.mark.django_db
def test_step_13_archives_the_portal_account_and_deletes_nothing(roles):
    case = make_case(roles, "step_13")
    partner_id = case.partner_id
    counts = {
        model.__name__: model.objects.count()
        for model in (Partner, Licence, ReferralLink, Payout, Payment, CaseEvent, Case)
    }
    assert Partner.objects.get(pk=partner_id).portal_archived_at is None
    case = complete(case, roles["portaladmin"])
    assert case.state == "done"
    partner = Partner.objects.get(pk=partner_id)
    assert partner.portal_archived_at is not None
    assert partner.status == PartnerStatus.OFFBOARDED
    assert partner.offboard_date == case.offboard_date
    counts_after = {
        model.__name__: model.objects.count()
        for model in (Partner, Licence, ReferralLink, Payout, Payment, CaseEvent, Case)
    }
    assert counts_after == {**counts, "CaseEvent": counts["CaseEvent"] + 1}


@pytest.mark.django_db
def test_the_whole_record_survives_done(roles):
    case = make_case(roles, "done")
    partner = Partner.objects.get(pk=case.partner_id)
    assert partner.licences.count() == 1
    assert partner.referral_links.count() == 1
    assert partner.payouts.count() == 2
    assert case.payments.count() == 2
    assert step_numbers(case) == [1, 2, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]


# ---------------------------------------------------------------------------------------
# 6. Notice and offboard dates
# ---------------------------------------------------------------------------------------

TODAY = dt.date(2026, 3, 2)


@pytest.mark.django_db
@pytest.mark.parametrize("legal", [False, True])
def test_company_removal_offboards_30_days_after_notice(roles, legal):
    case = open_for(PartnerFactory(cam=roles["cam"]), received_on=TODAY)
    notice = TODAY + dt.timedelta(days=1)
    case = complete(case, roles["cam"], data={"legal_action": legal, "notice_date": notice})
    assert case.notice_date == notice
    assert case.offboard_date == dt.date(2026, 4, 2)  # 3 March + 30 calendar days


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("requested_exit", "offboard"),
    [
        (None, dt.date(2026, 4, 1)),  # notice + 30
        (dt.date(2026, 4, 1), dt.date(2026, 4, 1)),  # exactly notice + 30
        (dt.date(2026, 5, 15), dt.date(2026, 5, 15)),  # the later requested exit date
    ],
)
def test_resignation_offboards_at_notice_plus_30_or_the_later_exit_date(
    roles, requested_exit, offboard
):
    case = open_for(PartnerFactory(cam=roles["cam"]), company=False, received_on=TODAY)
    data = {"notice_date": TODAY, "notice_channel": "email"}
    if requested_exit:
        data["requested_exit_date"] = requested_exit
    case = complete(case, roles["cam"], data=data)
    assert case.notice_date == TODAY
    assert case.offboard_date == offboard
    case = drive(case, until="step_6", actors=roles)
    assert Partner.objects.get(pk=case.partner_id).offboard_date == offboard


def test_resignation_with_an_exit_date_earlier_than_notice_plus_30_is_rejected():
    form = ResignationForm(
        data={
            "expected_state": "step_3",
            "notice_date": "2026-03-02",
            "notice_channel": "email",
            "requested_exit_date": "2026-03-20",
        }
    )
    assert not form.is_valid()
    assert "30 days" in " ".join(form.errors["requested_exit_date"])


# ---------------------------------------------------------------------------------------
# 7. Evidence travels with the step's event
# ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_legal_documents_are_attached_to_the_step_2_event(roles):
    case = open_for(PartnerFactory(cam=roles["cam"]))
    upload = SimpleUploadedFile("court-order.pdf", b"%PDF-1.4 test", "application/pdf")
    case = services.complete_step(
        actor=roles["cam"],
        case_id=case.pk,
        step_number=2,
        expected_state="step_2",
        data={"legal_action": True, "notice_date": timezone.localdate()},
        note="Counsel engaged",
        evidence=[upload],
    )
    event = case.events.get(step_number=2)
    assert event.note == "Counsel engaged"
    files = list(EvidenceFile.objects.filter(event=event))
    assert [(f.original_name, f.size) for f in files] == [("court-order.pdf", 13)]
