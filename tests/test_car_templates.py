"""The CAR pages drawn by templates from the context's booleans: the navigation's console
link comes from a permission (not a role name), the console hides money from whoever may
not read it, override rows say who may decide, and the ledger filter escapes like any value."""

import datetime as dt
import html
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.template import Context, Template
from django.urls import reverse
from django.utils import timezone

from offboarding.money import services
from offboarding.money.console import pending_overrides
from offboarding.money.overrides import OverrideRequested
from partners.models import Partner
from tests.factories import PayoutFactory, UserFactory
from tests.step_posts import case_at

CONSOLE_LINK = f'href="{reverse("car_console")}"'


def _with_permissions(username, *codenames):
    user = UserFactory(username=username)
    for codename in codenames:
        app_label, name = codename.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=name)
        )
    return user


def _requested_override(roles):
    """A case at step 8 whose partner has left, and CAR's request to pay one payout anyway."""
    case = case_at(8, roles)
    payout = PayoutFactory(partner=case.partner, amount=Decimal("75.00"))
    offboard = timezone.localdate() - dt.timedelta(days=5)
    type(case).objects.filter(pk=case.pk).update(offboard_date=offboard)
    Partner.objects.filter(pk=case.partner_id).update(offboard_date=offboard)
    with pytest.raises(OverrideRequested):
        services.record_payment(
            actor=roles["car"],
            case_id=case.pk,
            payout_id=payout.pk,
            amount=Decimal("75.00"),
            paid_on=timezone.localdate(),
            reference="LATE-T-1",
            override_reason="Earned <before> the exit",
        )
    return case


@pytest.mark.parametrize(
    ("username", "shown"),
    [
        ("car", True),
        ("manager", True),
        ("cam", False),
        ("salesops", False),
        ("portaladmin", False),
        ("nobody", False),
    ],
)
def test_the_console_link_follows_the_console_permission(client, roles, username, shown):
    client.force_login(roles[username])

    page = client.get(reverse("my_work")).content.decode()

    assert (CONSOLE_LINK in page) is shown


def test_a_money_permission_without_a_role_shows_the_link_and_opens_the_console(client, db):
    """No group, so no role name in the session: the permission alone decides."""
    client.force_login(_with_permissions("reader", "payouts.view_payout"))

    page = client.get(reverse("my_work")).content.decode()
    console = client.get(reverse("car_console"))

    assert CONSOLE_LINK in page
    assert console.status_code == 200


def test_a_car_lane_holder_who_may_not_read_money_sees_the_console_without_money(client, roles):
    case = _requested_override(roles)
    lane_only = _with_permissions(
        "lane-only",
        "offboarding.view_case",
        "offboarding.view_all_cases",
        "offboarding.perform_car_steps",
    )
    client.force_login(lane_only)

    console = client.get(reverse("car_console"))

    text = html.unescape(console.content.decode())
    assert console.status_code == 200
    assert f"#{case.pk}" in text  # the case waiting on step 8 is listed ...
    assert "Open balance" not in text  # ... without its balance,
    assert "75.00" not in text and "Overrides to approve" not in text  # the override,
    assert "Payments to offboarded partners" not in text  # or the late payments


def test_override_rows_say_who_may_decide(client, roles):
    case = _requested_override(roles)

    mine, theirs, managers = (
        pending_overrides(roles[name], case=case) for name in ("car", "car2", "manager")
    )

    assert [(row.can_decide, row.asked_by_you) for row in mine] == [(False, True)]
    assert [(row.can_decide, row.asked_by_you) for row in theirs] == [(True, False)]
    assert [(row.can_decide, row.asked_by_you) for row in managers] == [(False, False)]
    for username, approve, waits in (
        ("car", False, True),
        ("car2", True, False),
        ("manager", False, False),
    ):
        client.force_login(roles[username])
        text = client.get(reverse("car_console")).content.decode()
        assert "Earned &lt;before&gt; the exit" in text, username
        assert ('type="submit">Approve</button>' in text) is approve, username
        assert ("You asked for it: another CAR user decides." in text) is waits, username


def test_in_currency_writes_amount_and_currency_escaped():
    rendered = Template("{% load ledger %}{{ amount|in_currency:currency }}").render(
        Context({"amount": Decimal("200.00"), "currency": "<b>USD"})
    )

    assert rendered == "200.00 &lt;b&gt;USD"
