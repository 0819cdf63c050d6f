"""The partner page: the record, its licences, referral links and offboarding cases."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from offboarding.models import Case
from partners.models import Licence, LicenceStatus, ReferralLink, ReferralLinkStatus
from tests.factories import CaseFactory, PartnerFactory

pytestmark = pytest.mark.django_db


def _partner(roles):
    partner = PartnerFactory(cam=roles["cam"])
    partner.licences.all().delete()
    partner.referral_links.all().delete()
    for sku, name, membership, status in [
        ("ZZ-1", "Accountant Desktop", False, LicenceStatus.SUSPENDED),
        ("RPM", "Reseller Membership", True, LicenceStatus.ACTIVE),
        ("AB-2", "Online Advanced", False, LicenceStatus.ACTIVE),
    ]:
        Licence.objects.create(
            partner=partner, sku=sku, product_name=name, is_membership=membership, status=status
        )
    for code, status in [("zeta", ReferralLinkStatus.DEACTIVATED), ("alpha", "active")]:
        ReferralLink.objects.create(
            partner=partner,
            code=f"{code}-{partner.pk}",
            target_url="https://e.example",
            status=status,
        )
    older = CaseFactory(state="withdrawn", actors=roles, partner=partner)
    Case.objects.filter(pk=older.pk).update(opened_at=timezone.now() - dt.timedelta(days=40))
    current = CaseFactory(state="step_4", actors=roles, partner=partner)
    return partner, older, current


@pytest.mark.parametrize("username", ["cam", "manager"])
def test_the_partner_page_lists_licences_links_and_cases_in_order(client, roles, username):
    partner, older, current = _partner(roles)
    client.force_login(roles[username])
    response = client.get(reverse("partner_detail", args=[partner.pk]))
    assert response.status_code == 200
    context = response.context
    assert [
        (x.product_name, x.sku, x.is_membership, x.status_label) for x in context["licences"]
    ] == [
        ("Reseller Membership", "RPM", True, "Active"),
        ("Accountant Desktop", "ZZ-1", False, "Suspended"),
        ("Online Advanced", "AB-2", False, "Active"),
    ]
    assert [(x.code, x.status_label) for x in context["links"]] == [
        (f"alpha-{partner.pk}", "Active"),
        (f"zeta-{partner.pk}", "Deactivated"),
    ]
    assert [case.pk for case in context["cases"]] == [current.pk, older.pk]
    newest = context["cases"][0]
    assert newest.url == reverse("case_detail", args=[current.pk]) and newest.is_open
    assert newest.opened_on == timezone.localdate(current.opened_at).isoformat()
    assert context["open_case"] == newest
    html = response.content.decode()
    assert f"Open case #{current.pk} · {newest.state_label}" in html
    assert "Withdrawn" in html and "Reseller Membership (RPM) · membership — Active" in html


def test_a_partner_with_nothing_on_record_says_none(client, roles):
    partner = PartnerFactory(cam=roles["cam"])
    partner.licences.all().delete()
    partner.referral_links.all().delete()
    client.force_login(roles["cam"])
    response = client.get(reverse("partner_detail", args=[partner.pk]))
    assert response.context["open_case"] is None
    assert response.content.decode().count("<li>None</li>") == 3
    assert "Start offboarding" in response.content.decode()
