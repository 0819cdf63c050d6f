"""The partner page: the record, its licences, referral links and offboarding cases."""

import datetime as dt
import html
import re

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


def _section_items(response, heading_id):
    """The list items of the page's section headed `heading_id`, as a person reads them."""
    body = response.content.decode()
    start = body.index(f'id="{heading_id}"')
    section = body[start : body.index("</section>", start)]
    items = re.findall(r"<li\b[^>]*>(.*?)</li>", section, re.S)
    return [" ".join(html.unescape(re.sub(r"<[^>]+>", " ", item)).split()) for item in items]


@pytest.mark.parametrize("username", ["cam", "manager"])
def test_the_partner_page_lists_licences_links_and_cases_in_order(client, roles, username):
    partner, older, current = _partner(roles)
    client.force_login(roles[username])
    response = client.get(reverse("partner_detail", args=[partner.pk]))
    assert response.status_code == 200
    assert _section_items(response, "licence-heading") == [
        "Reseller Membership (RPM) · membership — Active",
        "Accountant Desktop (ZZ-1) — Suspended",
        "Online Advanced (AB-2) — Active",
    ]
    assert _section_items(response, "links-heading") == [
        f"alpha-{partner.pk} — Active",
        f"zeta-{partner.pk} — Deactivated",
    ]
    opened_on = timezone.localdate(current.opened_at).isoformat()
    cases = _section_items(response, "cases-heading")
    assert [int(re.match(r"#(\d+) ", item).group(1)) for item in cases] == [current.pk, older.pk]
    assert cases[0].endswith(f" · opened {opened_on}")
    assert cases[1].startswith(f"#{older.pk} Withdrawn · opened ")
    html = response.content.decode()
    assert f'href="{reverse("case_detail", args=[current.pk])}">Open case #{current.pk} · ' in html
    assert f'<a href="{reverse("case_detail", args=[older.pk])}">#{older.pk}</a> Withdrawn' in html
    assert f"Open case #{current.pk} · {cases[0].split(' ', 1)[1].split(' · opened')[0]}" in html
    assert "Withdrawn" in html and "Reseller Membership (RPM) · membership — Active" in html


def test_a_partner_with_nothing_on_record_says_none(client, roles):
    partner = PartnerFactory(cam=roles["cam"])
    partner.licences.all().delete()
    partner.referral_links.all().delete()
    client.force_login(roles["cam"])
    response = client.get(reverse("partner_detail", args=[partner.pk]))
    assert "Open case #" not in response.content.decode()
    assert response.content.decode().count("<li>None</li>") == 3
    assert "Start offboarding" in response.content.decode()
