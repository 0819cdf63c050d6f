"""Who may do what, through the pages and through Django admin: role x step x ownership.

`cam` manages the partner of every case here; `cam2` is a CAM who does not. Only the
lane's role completes a step; everybody else is refused (403 when they can see the case,
404 when they cannot) and the case does not move.
"""

import datetime as dt

import pytest
from django.contrib.auth import SESSION_KEY, get_user_model
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from offboarding.models import Case, CaseEvent, EventKind
from partners.models import PartnerStatus
from tests.factories import PartnerFactory
from tests.step_posts import (
    BLIND_USERS,
    LANE_USERS,
    NEXT_STATE,
    USERS,
    case_at,
    step_post,
)

pytestmark = pytest.mark.django_db

STEPS = tuple(range(2, 14))


def _messages(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


def _snapshot(case):
    case.refresh_from_db()
    return case.state, case.events.count()


# ---- completing steps through the case page ----


@pytest.mark.parametrize("username", USERS)
@pytest.mark.parametrize("step", STEPS)
def test_complete_step_matrix(client, roles, step, username):
    case = case_at(step, roles)
    before_state, before_events = _snapshot(case)
    client.force_login(roles[username])

    response = client.post(reverse("complete_step", args=[case.pk, step]), step_post(case, step))

    case.refresh_from_db()
    if username in LANE_USERS[step]:
        assert response.status_code == 302, response.content[:2000]
        assert response["Location"] == reverse("case_detail", args=[case.pk])
        assert case.state == NEXT_STATE[step]
        assert case.events.count() == before_events + 1
        event = case.events.order_by("-pk").first()
        assert (event.kind, event.step_number, event.actor) == (
            EventKind.STEP_COMPLETED,
            step,
            roles[username],
        )
        assert any("recorded" in m for m in _messages(response))
    else:
        expected = 404 if username in BLIND_USERS else 403
        assert response.status_code == expected
        assert (case.state, case.events.count()) == (before_state, before_events)


def test_step_9_payer_is_told_another_car_member_must_verify(client, roles):
    case = case_at(9, roles)
    assert set(case.payments.values_list("recorded_by__username", flat=True)) == {"car"}
    client.force_login(roles["car"])

    response = client.post(reverse("complete_step", args=[case.pk, 9]), step_post(case, 9))

    assert response.status_code == 403
    assert "another CAR member" in response.content.decode()
    case.refresh_from_db()
    assert case.state == "step_9"


def test_refused_step_says_why(client, roles):
    """A refused POST is answered 403 with the service's reason on the page."""
    case = case_at(2, roles)
    client.force_login(roles["salesops"])

    response = client.post(reverse("complete_step", args=[case.pk, 2]), step_post(case, 2))

    assert response.status_code == 403
    assert "Step 2 is for the CAM lane" in response.content.decode()


# ---- reading a case ----


READERS = ("salesops", "car", "car2", "portaladmin", "manager")


@pytest.mark.parametrize("username", USERS)
def test_case_detail_visibility(client, roles, username):
    case = case_at(2, roles)  # a CAM step: only the owning CAM has a form
    client.force_login(roles[username])

    response = client.get(reverse("case_detail", args=[case.pk]))

    step_url = reverse("complete_step", args=[case.pk, 2])
    if username in BLIND_USERS:
        assert response.status_code == 404
        return
    assert response.status_code == 200
    body = response.content.decode()
    withdraw_url = reverse("withdraw_case", args=[case.pk])
    if username == "cam":
        assert f'action="{step_url}"' in body
    else:
        assert username in READERS
        assert step_url not in body
        # Of the readers only the manager may withdraw (step 2 is before step 5).
        assert (f'action="{withdraw_url}"' in body) == (username == "manager")


@pytest.mark.parametrize(
    ("step", "actor"), [(5, "salesops"), (7, "car"), (12, "portaladmin"), (10, "cam")]
)
def test_only_the_lane_sees_the_step_form(client, roles, step, actor):
    case = case_at(step, roles)
    step_url = reverse("complete_step", args=[case.pk, step])
    for username in ("cam", "salesops", "car", "portaladmin", "manager"):
        client.force_login(roles[username])
        response = client.get(reverse("case_detail", args=[case.pk]))
        assert response.status_code == 200
        has_form = f'action="{step_url}"' in response.content.decode()
        assert has_form == (username == actor), username


# ---- withdrawing ----


@pytest.mark.parametrize("username", USERS)
@pytest.mark.parametrize("step", [2, 3, 4, 5])
def test_withdraw_before_step_5_is_done(client, roles, step, username):
    case = case_at(step, roles)
    before_state, before_events = _snapshot(case)
    client.force_login(roles[username])

    response = client.post(
        reverse("withdraw_case", args=[case.pk]),
        {"expected_state": case.state, "reason": "Partner rescinded"},
    )

    case.refresh_from_db()
    if username in ("cam", "manager"):
        assert response.status_code == 302
        assert case.state == "withdrawn"
        assert case.partner.status == PartnerStatus.ACTIVE
        assert case.events.filter(kind=EventKind.WITHDRAWN).count() == 1
    elif username in BLIND_USERS:
        assert response.status_code == 404
        assert (case.state, case.events.count()) == (before_state, before_events)
    else:
        assert response.status_code == 302
        assert (case.state, case.events.count()) == (before_state, before_events)
        assert any("can withdraw" in m for m in _messages(response))


@pytest.mark.parametrize("username", ["cam", "manager"])
@pytest.mark.parametrize("step", [6, 9, 13])
def test_withdraw_refused_after_step_5(client, roles, step, username):
    case = case_at(step, roles)
    before = _snapshot(case)
    client.force_login(roles[username])

    response = client.post(
        reverse("withdraw_case", args=[case.pk]),
        {"expected_state": case.state, "reason": "Too late"},
    )

    assert response.status_code == 302
    assert _snapshot(case) == before
    assert any("Step 5 is complete" in m for m in _messages(response))


# ---- starting offboarding ----


def _request_post():
    return {
        "initiated_by": "partner",
        "reason": "business_change",
        "reason_detail": "",
        "request_received_on": (timezone.localdate() - dt.timedelta(days=1)).isoformat(),
        "request_channel": "email",
        "note": "",
    }


@pytest.mark.parametrize("username", USERS)
def test_start_offboarding_only_by_the_owning_cam(client, roles, username):
    partner = PartnerFactory(cam=roles["cam"])
    url = reverse("start_offboarding", args=[partner.pk])
    client.force_login(roles[username])

    page = client.get(url)
    response = client.post(url, _request_post())

    partner.refresh_from_db()
    cases = Case.objects.filter(partner=partner)
    if username == "cam":
        assert page.status_code == 200
        assert cases.count() == 1
        assert response.status_code == 302
        assert response["Location"] == reverse("case_detail", args=[cases.get().pk])
        assert partner.status == PartnerStatus.OFFBOARDING
    else:
        expected = 404 if username in BLIND_USERS else 302
        assert page.status_code == expected
        assert response.status_code == expected
        if expected == 302:
            assert response["Location"] == reverse("partner_detail", args=[partner.pk])
            assert any("own CAM" in m for m in _messages(response))
        assert not cases.exists()
        assert partner.status == PartnerStatus.ACTIVE


# ---- the same matrix through Django admin ----


ADMIN_STEPS = {2: "record_company_removal", 5: "update_partner_record", 9: "verify_payouts"}
ADMIN_STEPS |= {12: "deactivate_referral_links"}


def _make_staff(user):
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    user.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="offboarding", codename__in=["change_case", "view_case"]
        )
    )


def _change_form_post(case, transition):
    return {
        "_fsm_transition_to": transition,
        "events-TOTAL_FORMS": "0",
        "events-INITIAL_FORMS": "0",
        "events-MIN_NUM_FORMS": "0",
        "events-MAX_NUM_FORMS": "1000",
    }


@pytest.mark.parametrize("username", USERS)
@pytest.mark.parametrize("step", sorted(ADMIN_STEPS))
def test_admin_plain_button_never_moves_the_case(client, roles, step, username):
    case = case_at(step, roles)
    transition = ADMIN_STEPS[step]
    before = _snapshot(case)
    _make_staff(roles[username])
    client.force_login(roles[username])
    change_url = reverse("admin:offboarding_case_change", args=[case.pk])

    response = client.post(change_url, _change_form_post(case, transition))

    assert response.status_code == 302
    assert _snapshot(case) == before
    if username in BLIND_USERS:
        assert response["Location"] == reverse("admin:index")
    else:
        # The POST went through the change form (no validation error) to the library's
        # button path, which sends it on to the transition's form: nothing is applied.
        assert response["Location"] == reverse(
            "admin:offboarding_case_transition",
            kwargs={"object_id": case.pk, "transition_name": transition},
        )


def test_admin_case_pages_render(client, roles):
    """The admin's case change page and a transition's form page render (and refuse bad
    input with 400), for the lane's own user."""
    case = case_at(5, roles)
    _make_staff(roles["salesops"])
    client.force_login(roles["salesops"])
    transition_url = reverse(
        "admin:offboarding_case_transition",
        kwargs={"object_id": case.pk, "transition_name": "update_partner_record"},
    )

    change_page = client.get(reverse("admin:offboarding_case_change", args=[case.pk]))
    form_page = client.get(transition_url)
    invalid = client.post(transition_url, {"expected_state": case.state})

    assert change_page.status_code == 200
    assert form_page.status_code == 200
    assert invalid.status_code == 400
    case.refresh_from_db()
    assert case.state == "step_5"


@pytest.mark.parametrize("username", USERS)
@pytest.mark.parametrize("step", sorted(ADMIN_STEPS))
def test_admin_transition_form_matrix(client, roles, step, username):
    case = case_at(step, roles)
    before_state, before_events = _snapshot(case)
    _make_staff(roles[username])
    client.force_login(roles[username])
    url = reverse(
        "admin:offboarding_case_transition",
        kwargs={"object_id": case.pk, "transition_name": ADMIN_STEPS[step]},
    )

    response = client.post(url, step_post(case, step))

    assert response.status_code == 302, response.content[:2000]
    case.refresh_from_db()
    if username in LANE_USERS[step]:
        assert case.state == NEXT_STATE[step]
        assert case.events.count() == before_events + 1
        assert case.events.order_by("-pk").first().actor == roles[username]
    else:
        assert (case.state, case.events.count()) == (before_state, before_events)


def test_admin_transition_form_withdraw_only_owner_or_manager(client, roles):
    for username in USERS:
        case = case_at(4, roles)
        _make_staff(roles[username])
        client.force_login(roles[username])
        url = reverse(
            "admin:offboarding_case_transition",
            kwargs={"object_id": case.pk, "transition_name": "withdraw"},
        )
        client.post(url, {"expected_state": case.state, "reason": "admin"})
        case.refresh_from_db()
        expected = "withdrawn" if username in ("cam", "manager") else "step_4"
        assert case.state == expected, username
    assert CaseEvent.objects.filter(kind=EventKind.WITHDRAWN).count() == 2


# ---- logging in and permissions (Django's ModelBackend behind axes) ----


def test_the_right_password_logs_in_with_the_roles_permissions(client, roles):
    response = client.post(reverse("login"), {"username": "cam", "password": "pw"})
    assert response.status_code == 302
    assert client.session[SESSION_KEY] == str(roles["cam"].pk)
    cam = get_user_model().objects.get(pk=roles["cam"].pk)
    assert cam.has_perm("offboarding.view_case")  # from the CAM group
    assert not cam.has_perm("offboarding.view_all_cases")


def test_a_permission_granted_to_the_user_counts_as_well(roles):
    roles["cam"].user_permissions.add(Permission.objects.get(codename="view_all_cases"))
    assert get_user_model().objects.get(pk=roles["cam"].pk).has_perm("offboarding.view_all_cases")


def test_an_inactive_user_cannot_log_in(client, roles):
    get_user_model().objects.filter(pk=roles["cam"].pk).update(is_active=False)
    response = client.post(reverse("login"), {"username": "cam", "password": "pw"})
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()
    assert SESSION_KEY not in client.session


def test_a_deactivated_users_session_ends_and_has_no_permissions(client, roles):
    client.force_login(roles["manager"])
    assert client.get(reverse("my_work")).status_code == 200
    get_user_model().objects.filter(pk=roles["manager"].pk).update(is_active=False)
    response = client.get(reverse("my_work"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    manager = get_user_model().objects.get(pk=roles["manager"].pk)
    assert manager.get_all_permissions() == set()
