"""The list pages page with Django's Paginator: a page number from the address, whatever it
is, shows a page (the first for what is not a number, the last for one past the end), in a
bounded number of queries."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from notifications import selectors as notification_selectors
from notifications.models import Notification, NotificationKind
from offboarding import partner_views
from offboarding import views as case_views
from offboarding.models import Case
from partners.models import Partner
from tests.factories import CaseFactory, PartnerFactory

pytestmark = pytest.mark.django_db

PER_PAGE = 3
HUGE = "99999999999999999999"  # more than a 64-bit OFFSET holds
# What the address may say, and the page get_page shows for it with 7 rows (3 pages).
NUMBERS = {
    None: 1,
    "": 1,
    "abc": 1,
    "2.0": 1,
    "1e3": 1,
    "%00": 1,
    "1": 1,
    "2": 2,
    "3": 3,
    "4": 3,
    "9": 3,
    "0": 3,
    "-1": 3,
    HUGE: 3,
    str(2**63): 3,
}


@pytest.fixture
def small_pages(monkeypatch):
    monkeypatch.setattr(case_views, "PAGE_SIZE", PER_PAGE)
    monkeypatch.setattr(partner_views, "PAGE_SIZE", PER_PAGE)
    monkeypatch.setattr(notification_selectors, "INBOX_PAGE_SIZE", PER_PAGE)


def _listed(url, body):
    """What the page lists, top to bottom: case ids, partner links or notification titles."""
    if url == reverse("inbox"):
        listed = body.split('<ul class="list-group">', 1)[1].split("</ul>")[0]
        return re.findall(r'<div class="fw-semibold">(.*?)</div>', listed)
    tbody = body.split("<tbody>", 1)[1].split("</tbody>")[0]
    if url == reverse("partner_list"):
        return re.findall(r'<a href="(/partners/\d+/)">', tbody)
    return re.findall(r'">#(\d+)</a>', tbody)


def _shown(client, url, number):
    params = {} if number is None else {"page": number}
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, params)
    assert response.status_code == 200, (url, number)
    return response, len(queries)


@pytest.mark.parametrize(("number", "expected"), NUMBERS.items())
def test_the_case_list_shows_the_page_get_page_shows(client, roles, small_pages, number, expected):
    for _ in range(7):
        CaseFactory(state="step_5", actors=roles)
    ordered = list(Case.objects.order_by("-opened_at", "-pk").values_list("pk", flat=True))
    client.force_login(roles["manager"])

    response, queries = _shown(client, reverse("case_list"), number)
    _, on_page_1 = _shown(client, reverse("case_list"), "1")

    shown = [int(pk) for pk in re.findall(r'">#(\d+)</a>', response.content.decode())]
    assert shown == ordered[(expected - 1) * PER_PAGE : expected * PER_PAGE]
    assert f"Page {expected} of 3" in response.content.decode()
    assert queries == on_page_1  # a page past the end is read by the same queries


@pytest.mark.parametrize(("number", "expected"), NUMBERS.items())
def test_my_work_the_partners_and_the_inbox_page_alike(
    client, roles, small_pages, number, expected
):
    cam = roles["cam"]
    for _ in range(7):
        CaseFactory(state="step_2", actors=roles, partner=PartnerFactory(cam=cam))
    Notification.objects.filter(recipient=cam).delete()
    for n in range(7):
        Notification.objects.create(
            recipient=cam, kind=NotificationKind.STEP_ASSIGNED, title=f"n{n}"
        )
    client.force_login(cam)

    for url in (reverse("my_work"), reverse("partner_list"), reverse("inbox")):
        response, _ = _shown(client, url, number)
        body = response.content.decode()
        assert f"Page {expected} of 3" in body, url
        listed = _listed(url, body)
        assert len(listed) == (1 if expected == 3 else PER_PAGE), (url, listed)


def test_a_filtered_page_counts_only_the_matching_rows(client, roles, small_pages):
    PartnerFactory.create_batch(5, display_name="Kept", cam=roles["cam"])
    PartnerFactory.create_batch(4, display_name="Other", cam=roles["cam"])
    client.force_login(roles["manager"])

    body = client.get(reverse("partner_list"), {"q": "Kept", "page": "2"}).content.decode()

    kept = Partner.objects.filter(display_name="Kept").order_by("display_name", "pk")
    assert "Page 2 of 2" in body  # 5 matching rows, PER_PAGE a page
    assert _listed(reverse("partner_list"), body) == [
        reverse("partner_detail", args=[p.pk]) for p in kept[PER_PAGE:]
    ]


def test_the_next_and_previous_links_keep_the_filters(client, roles, small_pages):
    for _ in range(7):
        CaseFactory(state="step_5", actors=roles)
    client.force_login(roles["manager"])

    html = client.get(
        reverse("case_list"), {"state": "step_5", "q": "Partner ", "page": "2"}
    ).content
    html = html.decode()

    assert 'href="?state=step_5&amp;q=Partner+&amp;page=1">Previous' in html
    assert 'href="?state=step_5&amp;q=Partner+&amp;page=3">Next' in html


def test_an_empty_table_is_one_empty_page_without_a_query():
    """My work for a user without a lane is Case.objects.none(): nothing to read."""
    with CaptureQueriesContext(connection) as queries:
        table = case_views._case_table(Case.objects.none().order_by("pk"), "1")
    assert (table["page"].number, table["page"].paginator.count, table["rows"]) == (1, 0, [])
    assert len(queries) == 0
