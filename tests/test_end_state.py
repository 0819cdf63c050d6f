"""Decision C: step 10 follows the partner record, and Done means gone everywhere.

The spec (shared/design/offboarding-process.md, Decision C): the CAM confirms the portal
the partner record names and cannot choose the other branch; a wrong record is corrected
by Sales Ops, audited, and the case follows it; a case reaches Done only when every
end-state fact holds, and a refused Done names the fact and the lane that owns it.

Each test's docstring names the hole it closes, as it was before this change: step 10 took
the portal from the form, and neither step 10 nor step 13 checked the end state.
"""

import html

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from offboarding import end_state, services
from offboarding.models import Case, CaseEvent, EventKind
from offboarding.services import ActionRefused, CaseMovedOn
from partners.models import (
    Licence,
    LicenceStatus,
    Partner,
    PartnerStatus,
    Portal,
    ReferralLink,
    ReferralLinkStatus,
)
from tests.factories import CaseFactory, PartnerFactory
from tests.step_posts import case_at, step_post

pytestmark = pytest.mark.django_db


# ---- helpers ----


def _text(response):
    return html.unescape(response.content.decode())


def _messages(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


def _post_step(client, case, step, **overrides):
    data = step_post(case, step) | overrides
    return client.post(reverse("complete_step", args=[case.pk, step]), data)


def _correction_post(case, portal, reason="The partner signed up on the beta portal."):
    return {"expected_state": case.state, "portal": portal, "reason": reason}


def _step_events(case, step):
    return CaseEvent.objects.filter(
        case=case, kind=EventKind.STEP_COMPLETED, step_number=step
    ).count()


def _legacy_partner_with_live_link(roles):
    partner = PartnerFactory(cam=roles["cam"])
    assert partner.portal == Portal.LEGACY
    ReferralLink.objects.create(
        partner=partner, code="stray-live-link", target_url="https://example.com/r"
    )
    return partner


def _active_links(partner):
    return partner.referral_links.filter(status=ReferralLinkStatus.ACTIVE).count()


# ---- 1. step 10 follows the record, through the pages ----


def test_step_10_page_refuses_the_other_branch_for_a_beta_partner(client, roles):
    """Hole: step 10 took the portal from the POST, so the CAM could send portal=legacy for a
    beta partner and close the case at once, with its referral links still live and the
    beta account never archived. Now the form and the service refuse it."""
    case = case_at(10, roles)
    assert case.partner.portal == Portal.BETA
    links = _active_links(case.partner)
    assert links >= 1
    client.force_login(roles["cam"])

    response = _post_step(client, case, 10, portal=Portal.LEGACY)

    assert response.status_code == 400  # the form refuses a portal the record does not name
    case.refresh_from_db()
    assert case.state == "step_10"
    assert _step_events(case, 10) == 0
    partner = Partner.objects.get(pk=case.partner_id)
    assert partner.status == PartnerStatus.OFFBOARDING
    assert _active_links(partner) == links

    response = _post_step(client, case, 10, portal=Portal.BETA)

    assert response.status_code == 302
    case.refresh_from_db()
    assert case.state == "step_11"
    assert case.portal == Portal.BETA
    assert Partner.objects.get(pk=case.partner_id).status == PartnerStatus.OFFBOARDING


def test_step_10_service_refuses_a_portal_other_than_the_records(roles):
    """Hole: `complete_step` accepted any portal in the data (admin, task or command
    callers skip the form), and the branch followed it."""
    case = case_at(10, roles)
    with pytest.raises(ActionRefused, match="step 10 follows the record"):
        services.complete_step(
            actor=roles["cam"],
            case_id=case.pk,
            step_number=10,
            expected_state=case.state,
            data={"portal": Portal.LEGACY},
        )
    case.refresh_from_db()
    assert case.state == "step_10"


# ---- 2. a wrong record: refused Done, Sales Ops corrects, the case follows ----


def test_legacy_record_with_a_live_link_is_refused_then_corrected(client, roles):
    """Hole: a partner recorded as legacy but with a live referral link (so really on the
    beta portal) went straight from step 10 to Done, its link still active and steps 11-13
    skipped. Now Done is refused naming the link and the Portal admin lane; Sales Ops
    corrects the record on the case page (audited) and step 10 then takes the beta branch."""
    partner = _legacy_partner_with_live_link(roles)
    case = CaseFactory(state="step_10", partner=partner, actors=roles)
    assert case.state == "step_10"
    events_before = CaseEvent.objects.filter(case=case).count()
    client.force_login(roles["cam"])

    response = _post_step(client, case, 10)

    assert response.status_code == 403
    refusal = " ".join(_messages(response))
    assert "stray-live-link" in refusal
    assert "referral link" in refusal
    assert "Portal admin" in refusal
    case.refresh_from_db()
    assert case.state == "step_10"
    assert case.closed_at is None
    assert CaseEvent.objects.filter(case=case).count() == events_before
    partner.refresh_from_db()
    assert partner.status == PartnerStatus.OFFBOARDING
    assert partner.portal == Portal.LEGACY
    assert _active_links(partner) == 1

    client.force_login(roles["salesops"])
    page = client.get(reverse("case_detail", args=[case.pk]))
    assert reverse("correct_portal", args=[case.pk]) in _text(page)
    reason = "Signed up on the beta portal in 2024; the CRM was never updated."
    response = client.post(
        reverse("correct_portal", args=[case.pk]), _correction_post(case, Portal.BETA, reason)
    )

    assert response.status_code == 302
    partner.refresh_from_db()
    assert partner.portal == Portal.BETA
    event = CaseEvent.objects.get(case=case, kind=EventKind.RECORD_CORRECTED)
    assert event.actor == roles["salesops"]
    assert event.data["from"] == Portal.LEGACY
    assert event.data["to"] == Portal.BETA
    assert event.data["reason"] == reason
    case.refresh_from_db()
    assert case.state == "step_10"

    client.force_login(roles["cam"])
    response = _post_step(client, case, 10)

    assert response.status_code == 302
    case.refresh_from_db()
    assert case.state == "step_11"
    assert case.portal == Portal.BETA


# ---- 3. step 13: every fact earlier steps own is checked again ----

# Each fact earlier steps own, how to undo it behind the case's back, and words the refusal
# must contain (from the spec's list of end-state facts).
UNDO = {
    "record": (lambda p: Partner.objects.filter(pk=p.pk).update(status_reason=""), "reason"),
    "opted_out": (lambda p: Partner.objects.filter(pk=p.pk).update(opted_out=False), "opted out"),
    "distribution_group": (
        lambda p: Partner.objects.filter(pk=p.pk).update(in_distribution_group=True),
        "distribution group",
    ),
    "landing_pages": (
        lambda p: Partner.objects.filter(pk=p.pk).update(landing_page_access=True),
        "landing-page access",
    ),
    "membership": (
        lambda p: Licence.objects.filter(partner=p, is_membership=True).update(
            status=LicenceStatus.ACTIVE
        ),
        "membership licence",
    ),
    "referral_links": (
        lambda p: ReferralLink.objects.filter(partner=p).update(
            status=ReferralLinkStatus.ACTIVE, deactivated_at=None
        ),
        "referral link",
    ),
}
EARLIER_FACTS = [fact for fact in end_state.FACTS if not fact.set_on_close]


def test_every_earlier_fact_has_an_undo():
    assert {fact.key for fact in EARLIER_FACTS} == set(UNDO)


@pytest.mark.parametrize("fact", EARLIER_FACTS, ids=lambda fact: fact.key)
def test_step_13_refuses_done_while_a_fact_is_undone(roles, fact):
    """Hole: step 13 closed the case without looking: a partner opted back in, returned to
    the distribution group or landing pages, with its membership or a referral link active
    again, or with no reason on record, was still marked offboarded and the case Done."""
    partner = PartnerFactory(beta=True, cam=roles["cam"])
    case = CaseFactory(state="step_13", partner=partner, actors=roles)
    assert case.state == "step_13"
    assert not end_state.gaps(Partner.objects.get(pk=partner.pk), before_close=True)
    undo, words = UNDO[fact.key]
    undo(partner)
    partner = Partner.objects.get(pk=partner.pk)
    observed = fact.observed(partner)
    assert observed

    with pytest.raises(ActionRefused) as refused:
        services.complete_step(
            actor=roles["portaladmin"],
            case_id=case.pk,
            step_number=13,
            expected_state=case.state,
            data={},
        )

    message = str(refused.value)
    assert not isinstance(refused.value, CaseMovedOn)
    assert words in message.lower()
    assert observed[1:] in message  # the sentence, capitalised in the message
    assert fact.lane.label in message
    case.refresh_from_db()
    assert case.state == "step_13"
    assert case.closed_at is None
    partner.refresh_from_db()
    assert partner.status == PartnerStatus.OFFBOARDING
    assert partner.portal_archived_at is None
    assert _step_events(case, 13) == 0


# ---- 4. who may correct the record, and when ----


@pytest.mark.parametrize("username", ["cam", "car", "portaladmin"])
def test_only_sales_ops_corrects_the_portal(roles, username):
    """Hole: there was no audited correction at all; now only Sales Ops may make one."""
    case = CaseFactory(state="step_10", actors=roles)
    with pytest.raises(ActionRefused, match="Only Sales Ops") as refused:
        services.correct_partner_portal(
            actor=roles[username],
            case_id=case.pk,
            expected_state=case.state,
            portal=Portal.BETA,
            reason="Wrong record",
        )
    assert not isinstance(refused.value, CaseMovedOn)
    assert Partner.objects.get(pk=case.partner_id).portal == Portal.LEGACY
    assert not CaseEvent.objects.filter(case=case, kind=EventKind.RECORD_CORRECTED).exists()


@pytest.mark.parametrize(
    ("portal", "reason", "words"),
    [
        (Portal.BETA, "   ", "Say why"),
        (Portal.LEGACY, "Looks wrong", "already says"),
        ("gamma", "Looks wrong", "not a partner portal"),
    ],
    ids=["blank-reason", "same-portal", "unknown-portal"],
)
def test_correction_refusals(roles, portal, reason, words):
    """Hole: a correction without a reason, or one that changes nothing, would leave an
    audit entry that explains nothing."""
    case = CaseFactory(state="step_10", actors=roles)
    with pytest.raises(ActionRefused, match=words):
        services.correct_partner_portal(
            actor=roles["salesops"],
            case_id=case.pk,
            expected_state=case.state,
            portal=portal,
            reason=reason,
        )
    assert Partner.objects.get(pk=case.partner_id).portal == Portal.LEGACY
    assert not CaseEvent.objects.filter(case=case, kind=EventKind.RECORD_CORRECTED).exists()


def test_no_correction_after_step_10(roles):
    """Hole: once step 10 has taken a branch, changing the record's portal would leave the
    case on a branch its record contradicts; the correction is refused."""
    case = CaseFactory(state="step_11", actors=roles, partner_kwargs={"portal": Portal.BETA})
    assert case.state == "step_11"
    with pytest.raises(ActionRefused, match="until step 10") as refused:
        services.correct_partner_portal(
            actor=roles["salesops"],
            case_id=case.pk,
            expected_state=case.state,
            portal=Portal.LEGACY,
            reason="Wrong record",
        )
    assert not isinstance(refused.value, CaseMovedOn)
    assert Partner.objects.get(pk=case.partner_id).portal == Portal.BETA


def test_stale_correction_is_refused_as_moved_on(roles):
    """Hole: a correction made on a page rendered for an earlier step must not land
    silently on a case that has moved on."""
    case = CaseFactory(state="step_10", actors=roles)
    with pytest.raises(CaseMovedOn):
        services.correct_partner_portal(
            actor=roles["salesops"],
            case_id=case.pk,
            expected_state="step_9",
            portal=Portal.BETA,
            reason="Wrong record",
        )
    assert Partner.objects.get(pk=case.partner_id).portal == Portal.LEGACY


def test_sales_ops_correction_records_and_follows(roles):
    """The service's audited effect: the record changes, the event says from, to and why."""
    case = CaseFactory(state="step_6", actors=roles)
    services.correct_partner_portal(
        actor=roles["salesops"],
        case_id=case.pk,
        expected_state=case.state,
        portal=Portal.BETA,
        reason="  On beta since March  ",
    )
    assert Partner.objects.get(pk=case.partner_id).portal == Portal.BETA
    event = CaseEvent.objects.get(case=case, kind=EventKind.RECORD_CORRECTED)
    assert event.data == {
        "field": "portal",
        "from": Portal.LEGACY,
        "to": Portal.BETA,
        "reason": "On beta since March",
    }
    assert event.from_state == event.to_state == "step_6"


@pytest.mark.parametrize("username", ["cam", "car", "portaladmin", "manager"])
def test_correction_page_is_sales_ops_only(client, roles, username):
    """Hole: the case page must not offer, and the URL must not accept, a correction from
    anyone but Sales Ops."""
    case = CaseFactory(state="step_10", actors=roles)
    url = reverse("correct_portal", args=[case.pk])
    client.force_login(roles[username])

    page = client.get(reverse("case_detail", args=[case.pk]))
    assert page.status_code == 200
    assert url not in _text(page)
    assert "Correct the partner record" not in _text(page)

    response = client.post(url, _correction_post(case, Portal.BETA))

    assert response.status_code == 400
    assert Partner.objects.get(pk=case.partner_id).portal == Portal.LEGACY
    assert not CaseEvent.objects.filter(case=case, kind=EventKind.RECORD_CORRECTED).exists()


# ---- 5. the happy paths still reach Done ----


def test_legacy_partner_without_links_reaches_done_at_step_10(client, roles):
    """Guard against the new conditions refusing too much: a legacy partner with no
    referral link, every earlier fact holding, closes at step 10 through the page."""
    case = CaseFactory(state="step_10", actors=roles)
    assert not case.partner.referral_links.exists()
    client.force_login(roles["cam"])

    response = _post_step(client, case, 10)

    assert response.status_code == 302
    case.refresh_from_db()
    assert case.state == "done"
    assert case.portal == Portal.LEGACY
    partner = Partner.objects.get(pk=case.partner_id)
    assert partner.status == PartnerStatus.OFFBOARDED
    assert not end_state.gaps(partner, before_close=False)


def test_beta_partner_reaches_done_through_steps_11_to_13(client, roles):
    """Guard against the new conditions refusing too much: a beta partner goes through
    steps 10-13 on the pages and is Done, its links inactive, its account archived."""
    case = case_at(10, roles)
    lane_user = {10: "cam", 11: "car", 12: "portaladmin", 13: "portaladmin"}
    for step, then in ((10, "step_11"), (11, "step_12"), (12, "step_13"), (13, "done")):
        client.force_login(roles[lane_user[step]])
        response = _post_step(client, case, step)
        assert response.status_code == 302, _messages(response)
        case = Case.objects.get(pk=case.pk)
        assert case.state == then

    partner = Partner.objects.get(pk=case.partner_id)
    assert partner.status == PartnerStatus.OFFBOARDED
    assert partner.portal_archived_at is not None
    assert _active_links(partner) == 0
    assert not end_state.gaps(partner, before_close=False)


def test_factory_paths_reach_done(roles):
    """Both branches, driven through the services as the demo does, still end Done."""
    legacy = CaseFactory(state="done", actors=roles)
    beta = CaseFactory(state="done", actors=roles, partner_kwargs={"portal": Portal.BETA})
    for case in (legacy, beta):
        assert case.state == "done"
        assert Partner.objects.get(pk=case.partner_id).status == PartnerStatus.OFFBOARDED
    assert _step_events(beta, 13) == 1
    assert _step_events(legacy, 13) == 0
