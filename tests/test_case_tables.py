"""My work and the case list as tables: their order, their pages, and what each row says."""

import datetime as dt
import html
import re
from dataclasses import dataclass

import pytest
from django.urls import reverse
from django.utils import timezone

from offboarding.models import Case
from tests.factories import CaseFactory, PartnerFactory, UserFactory

pytestmark = pytest.mark.django_db

PAGE_SIZE = 25


@dataclass(frozen=True)
class Row:
    pk: int
    partner: str
    cam: str
    step: str
    lane: str
    overdue: bool


@dataclass(frozen=True)
class Page:
    number: int
    pages: int
    has_next: bool


def _text(fragment):
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def _table(client, url, **params):
    """The table's page and rows as the page shows them (its pager, each row's cells)."""
    response = client.get(url, params)
    assert response.status_code == 200
    body = response.content.decode()
    tbody = re.search(r"<tbody>(.*?)</tbody>", body, re.S)
    rows = []
    for tr in re.findall(r"<tr\b[^>]*>(.*?)</tr>", tbody.group(1) if tbody else "", re.S):
        cells = [_text(td) for td in re.findall(r"<td\b[^>]*>(.*?)</td>", tr, re.S)]
        case, partner, cam, step, lane, due = cells[:6]
        rows.append(Row(int(case.lstrip("#")), partner, cam, step, lane, "Overdue" in due))
    pager = re.search(r"Page (\d+) of (\d+)", _text(body))
    number, pages = (int(pager[1]), int(pager[2])) if pager else (1, 1)
    return Page(number, pages, ">Next</a>" in body), rows


def test_my_work_is_most_urgent_first_across_pages(client, roles):
    cases = [CaseFactory(state="step_2", actors=roles) for _ in range(PAGE_SIZE + 3)]
    now = timezone.now()
    # Due times in an order unlike creation: two overdue, the rest spread over coming days.
    for offset, case in zip([5, -2, 17, 3, -9, *range(20, 43)], cases, strict=True):
        Case.objects.filter(pk=case.pk).update(step_due_at=now + dt.timedelta(hours=offset))
    expected = list(Case.objects.order_by("step_due_at", "step_started_at", "pk"))
    client.force_login(roles["cam"])

    page_1, rows_1 = _table(client, reverse("my_work"))
    page_2, rows_2 = _table(client, reverse("my_work"), page=2)

    assert page_1 == Page(1, 2, has_next=True)
    assert [row.pk for row in rows_1 + rows_2] == [case.pk for case in expected]
    assert len(rows_2) == 3 and page_2 == Page(2, 2, has_next=False)
    assert [row.overdue for row in rows_1[:3]] == [True, True, False]
    first = rows_1[0]
    assert first.partner == expected[0].partner.display_name
    assert first.step == "2 · Company-initiated removal"
    assert first.lane == "CAM"


def test_case_list_is_newest_first_and_each_case_on_one_page(client, roles):
    cases = [CaseFactory(state="step_5", actors=roles) for _ in range(PAGE_SIZE + 2)]
    start = timezone.now() - dt.timedelta(days=60)
    for days, case in zip([7, 1, 30, *range(40, 64)], cases, strict=True):
        Case.objects.filter(pk=case.pk).update(opened_at=start + dt.timedelta(days=days))
    expected = [case.pk for case in Case.objects.order_by("-opened_at", "-pk")]
    client.force_login(roles["manager"])

    _, rows_1 = _table(client, reverse("case_list"))
    page_2, rows_2 = _table(client, reverse("case_list"), page=2)
    _, rows_last = _table(client, reverse("case_list"), page=99)  # past the end: the last

    assert [row.pk for row in rows_1 + rows_2] == expected
    assert page_2.number == 2 and [row.pk for row in rows_last] == expected[PAGE_SIZE:]


def test_an_empty_table_says_so(client, roles):
    client.force_login(roles["cam2"])
    page, rows = _table(client, reverse("my_work"))
    assert rows == [] and page == Page(1, 1, has_next=False)
    assert "No cases match." in client.get(reverse("my_work")).content.decode()


def test_a_row_escapes_what_people_typed_and_marks_overdue(client, roles):
    partner = PartnerFactory(cam=roles["cam"], display_name='<b>Evil & "Co"</b>')
    case = CaseFactory(state="step_2", actors=roles, partner=partner)
    Case.objects.filter(pk=case.pk).update(step_due_at=timezone.now() - dt.timedelta(hours=1))
    client.force_login(roles["cam"])
    html = client.get(reverse("my_work")).content.decode()
    assert "&lt;b&gt;Evil &amp; &quot;Co&quot;&lt;/b&gt;" in html and "<b>Evil" not in html
    row = html[html.index('<tr class="table-danger">') :]
    row = row[: row.index("</tr>")]
    assert f'<a href="{reverse("case_detail", args=[case.pk])}">#{case.pk}</a>' in row
    assert '<span class="badge text-bg-danger">Overdue</span>' in row


def test_the_case_list_filters_keep_what_was_chosen_and_escape_names(client, roles):
    roles["cam2"].first_name, roles["cam2"].last_name = "<i>Ann</i>", "O'Neil"
    roles["cam2"].save()
    client.force_login(roles["manager"])
    chosen = {"state": "step_5", "lane": "sales_ops", "cam": str(roles["cam2"].pk)}
    html = client.get(reverse("case_list"), chosen).content.decode()
    assert '<option value="step_5" selected>' in html
    assert '<option value="sales_ops" selected>' in html
    assert f'<option value="{roles["cam2"].pk}" selected>&lt;i&gt;Ann&lt;/i&gt; O&#x27;Neil' in html
    assert html.count(" selected>") == 3
    assert "<i>Ann" not in html


def test_the_cam_filter_offers_every_cam_by_username_and_no_one_else(client, roles):
    from django.contrib.auth.models import Group

    from accounts.roles import Role
    from offboarding.selectors import cams

    # A CAM who also holds another role is listed once; a manager, CAR or no one is not.
    UserFactory(username="aaron", first_name="Aaron", last_name="Ames", role=Role.CAM)
    both = UserFactory(username="zed", role=Role.CAM)
    both.groups.add(Group.objects.get(name=Role.MANAGER))
    expected = [
        (user.pk, user.username, user.first_name, user.last_name)
        for user in Group.objects.get(name=Role.CAM).user_set.order_by("username")
    ]
    assert [row[1] for row in expected] == ["aaron", "cam", "cam2", "zed"]
    assert [tuple(row) for row in cams()] == expected

    client.force_login(roles["manager"])
    html = client.get(reverse("case_list")).content.decode()
    cam_select = html.split('id="case-cam"', 1)[1].split("</select>", 1)[0]
    assert cam_select.count("<option") == 5  # "All" and the four CAMs
    assert f'<option value="{roles["cam"].pk}">cam</option>' in cam_select
    assert "Aaron Ames" in cam_select and "manager" not in cam_select
