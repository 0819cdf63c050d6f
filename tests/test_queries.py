"""Query-count pins for every list and detail page.

Each page is measured with N rows and with 3N rows: the counts must be equal (no query
per row, no N+1) and equal to the pinned number, so a change in either shows up here.
A page that checks a permission costs PERMISSIONS_QUERY more (tests/query_counts.py).
"""

import datetime as dt
import html
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from notifications import services as notify
from notifications.models import Notification, NotificationKind
from offboarding import services
from offboarding.models import Case, EventKind, EvidenceFile
from partners.models import Licence, ReferralLink
from tests.factories import CaseFactory, PartnerFactory, PayoutFactory
from tests.query_counts import PERMISSIONS_QUERY

pytestmark = pytest.mark.django_db

N = 2


def count_queries(client, url, data=None):
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url, data or {})
    assert response.status_code == 200, f"{url} -> {response.status_code}"
    return len(ctx.captured_queries), response


def _measure(client, setup, url_for, n):
    """Queries of the page after `setup(n)` and after `setup(3n)` rows (cumulative)."""
    url, data = url_for()
    setup(n)
    few, few_response = count_queries(client, url, data)
    setup(2 * n)  # now 3n in all
    many, many_response = count_queries(client, url, data)
    return few, many, few_response, many_response


def _plain(response):
    """The page as the words a person reads."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", response.content.decode())).split())


def _section(response, heading_id):
    body = response.content.decode()
    start = body.index(f'id="{heading_id}"')
    return body[start : body.index("</section>", start)]


def _rows(response):
    """How many rows the page lists: its table's body rows, or the inbox's notifications."""
    body = response.content.decode()
    if "<tbody>" in body:
        return body.split("<tbody>", 1)[1].split("</tbody>")[0].count("<tr")
    listed = body.split('<ul class="list-group">', 1)[1].split("</ul>")[0]
    return listed.count('<div class="fw-semibold">')


# ---- my work ----


@pytest.mark.parametrize(
    ("username", "state", "pinned"),
    [("salesops", "step_5", 5), ("cam", "step_2", 5), ("car", "step_7", 5)],
)
def test_my_work(client, roles, username, state, pinned):
    client.force_login(roles[username])

    def setup(count):
        for _ in range(count):
            CaseFactory(state=state, actors=roles)

    few, many, r1, r3 = _measure(client, setup, lambda: (reverse("my_work"), None), N)
    assert (_rows(r1), _rows(r3)) == (N, 3 * N)
    assert few == many, f"my_work for {username}: {few} queries with {N} rows, {many} with {3 * N}"
    assert few == pinned + PERMISSIONS_QUERY


# ---- case list ----


def _overdue(case):
    Case.objects.filter(pk=case.pk).update(step_due_at=timezone.now() - dt.timedelta(days=2))


CASE_LIST_FILTERS = {
    "default": {},
    "state": {"state": "step_5"},
    "lane": {"lane": "sales_ops"},
    "cam": {"cam": "CAM_ID"},
    "overdue": {"overdue": "1"},
    "search": {"q": "Partner"},
    "all": {"state": "", "lane": "sales_ops", "cam": "CAM_ID", "overdue": "1", "q": "Partner"},
}


@pytest.mark.parametrize("filter_name", sorted(CASE_LIST_FILTERS))
@pytest.mark.parametrize(("username", "pinned"), [("manager", 6), ("cam", 5)])
def test_case_list(client, roles, filter_name, username, pinned):
    client.force_login(roles[username])
    params = {
        key: str(roles["cam"].pk) if value == "CAM_ID" else value
        for key, value in CASE_LIST_FILTERS[filter_name].items()
    }
    # Noise that no filter above keeps: a case of cam2's at step 2.
    CaseFactory(state="step_2", actors=roles, partner=PartnerFactory(cam=roles["cam2"]))

    def setup(count):
        for _ in range(count):
            _overdue(CaseFactory(state="step_5", actors=roles))

    few, many, r1, r3 = _measure(client, setup, lambda: (reverse("case_list"), params), N)
    assert _rows(r3) - _rows(r1) == 2 * N
    assert few == many, f"case_list {params}: {few} queries with {N} rows, {many} with {3 * N}"
    assert few == pinned + PERMISSIONS_QUERY


def test_case_list_htmx_partial(client, roles):
    """The htmx partial (the table only) is bounded too, and cheaper than the page."""
    client.force_login(roles["manager"])

    def setup(count):
        for _ in range(count):
            _overdue(CaseFactory(state="step_5", actors=roles))

    url, params = reverse("case_list"), {"overdue": "1", "q": "Partner"}
    setup(N)
    with CaptureQueriesContext(connection) as few:
        r1 = client.get(url, params, HTTP_HX_REQUEST="true")
    setup(2 * N)
    with CaptureQueriesContext(connection) as many:
        r3 = client.get(url, params, HTTP_HX_REQUEST="true")
    assert [t.name for t in r1.templates][0] == "offboarding/_case_table.html"
    assert (_rows(r1), _rows(r3)) == (N, 3 * N)
    assert len(few) == len(many) == 4 + PERMISSIONS_QUERY


# ---- case detail ----


def _case_at_step_9_with(roles, payouts, evidence):
    """A case at step 9 with `payouts` paid payouts (each a payment and an event) and
    `evidence` files on its step-1 event."""
    partner = PartnerFactory(cam=roles["cam"], beta=True)
    for _ in range(payouts):
        PayoutFactory(partner=partner)
    for i in range(payouts):
        Licence.objects.create(partner=partner, sku=f"X-{i}", product_name=f"Product {i}")
        ReferralLink.objects.create(
            partner=partner, code=f"extra-{partner.pk}-{i}", target_url="https://e.example"
        )
    today = timezone.localdate()
    case = services.open_case(
        actor=roles["cam"],
        partner_id=partner.pk,
        data={
            "initiated_by": "company",
            "reason": "revenue_minimum",
            "reason_detail": "",
            "request_received_on": today - dt.timedelta(days=1),
            "request_channel": "internal_review",
        },
        evidence=[
            SimpleUploadedFile(f"e{i}.pdf", b"%PDF-1.4", "application/pdf") for i in range(evidence)
        ],
    )
    from offboarding.demo import drive

    case = drive(case, until="step_9", actors=roles)
    assert case.state == "step_9"
    assert case.payments.count() == payouts
    assert case.events.filter(kind=EventKind.PAYMENT_RECORDED).count() == payouts
    assert EvidenceFile.objects.filter(event__case=case).count() == evidence
    return case


# The overrides awaiting approval on the case (Decision D) are read for CAR only when one
# waits (the case's query says whether); the first visit reads the history too.
@pytest.mark.parametrize(("username", "pinned"), [("car2", 9), ("car", 9), ("manager", 9)])
def test_case_detail_at_step_9(client, roles, username, pinned):
    client.force_login(roles[username])
    small = _case_at_step_9_with(roles, payouts=N, evidence=N)
    big = _case_at_step_9_with(roles, payouts=3 * N, evidence=3 * N)

    few, r1 = count_queries(client, reverse("case_detail", args=[small.pk]))
    many, r3 = count_queries(client, reverse("case_detail", args=[big.pk]))

    payments = [len(re.findall(r" · ref \S+ · by ", _plain(r))) for r in (r1, r3)]
    assert payments == [N, 3 * N]
    history = [_section(r, "history-heading").count("<li") for r in (r1, r3)]
    assert history[1] > history[0]
    verify = f'action="{reverse("complete_step", args=[small.pk, 9])}"'
    assert (verify in r1.content.decode()) == (username == "car2")
    assert few == many, f"case_detail: {few} queries with {N} payments, {many} with {3 * N}"
    assert few == pinned + PERMISSIONS_QUERY


@pytest.mark.parametrize(("step", "pinned"), [(2, 5), (8, 9), (12, 6), (13, 5)])
def test_case_detail_other_steps(client, roles, step, pinned):
    """The other step forms (payment form at 8, link count at 12) do not add per-row work."""
    from tests.step_posts import case_at

    user = {2: "cam", 8: "car", 12: "portaladmin", 13: "portaladmin"}[step]
    client.force_login(roles[user])
    small = case_at(step, roles)
    big = case_at(step, roles)
    if step == 8:  # both with something still to pay, so both show the payment forms
        PayoutFactory(partner=small.partner)
    for i in range(2 * N):
        ReferralLink.objects.create(
            partner=big.partner, code=f"more-{big.pk}-{i}", target_url="https://e.example"
        )
        if step == 8:
            PayoutFactory(partner=big.partner)

    few, _ = count_queries(client, reverse("case_detail", args=[small.pk]))
    many, _ = count_queries(client, reverse("case_detail", args=[big.pk]))
    assert few == many
    assert few == pinned + PERMISSIONS_QUERY


# ---- partners ----


@pytest.mark.parametrize(
    ("username", "params", "pinned"),
    [
        ("manager", {}, 5),
        ("manager", {"q": "Partner"}, 5),
        ("manager", {"q": "Partner", "status": "active", "portal": "legacy"}, 5),
        ("cam", {"q": "Partner"}, 5),
    ],
)
def test_partner_list(client, roles, username, params, pinned):
    client.force_login(roles[username])

    def setup(count):
        for _ in range(count):
            PartnerFactory(cam=roles["cam"])

    few, many, r1, r3 = _measure(client, setup, lambda: (reverse("partner_list"), params), N)
    assert (_rows(r1), _rows(r3)) == (N, 3 * N)
    assert few == many, f"partner_list {params}: {few} queries with {N} rows, {many} with {3 * N}"
    assert few == pinned + PERMISSIONS_QUERY


def _partner_with(roles, count):
    """A partner with `count` withdrawn cases, an open one, and `count` extra licences and
    links."""
    partner = PartnerFactory(cam=roles["cam"])
    for _ in range(count):
        CaseFactory(state="withdrawn", actors=roles, partner=partner)
    CaseFactory(state="step_4", actors=roles, partner=partner)
    for i in range(count):
        Licence.objects.create(partner=partner, sku=f"L-{i}", product_name=f"Licence {i}")
        ReferralLink.objects.create(
            partner=partner, code=f"p{partner.pk}-{i}", target_url="https://e.example"
        )
    return partner


# The licences, the referral links and the cases are three queries (they were one UNION ALL
# of the three, issue 16: the ORM's own queries).
@pytest.mark.parametrize(("username", "pinned"), [("cam", 7), ("manager", 7)])
def test_partner_detail(client, roles, username, pinned):
    client.force_login(roles[username])
    small = _partner_with(roles, N)
    big = _partner_with(roles, 3 * N)

    few, r1 = count_queries(client, reverse("partner_detail", args=[small.pk]))
    many, r3 = count_queries(client, reverse("partner_detail", args=[big.pk]))

    cases = [_section(r, "cases-heading").count("<li><a href=") for r in (r1, r3)]
    assert cases == [N + 1, 3 * N + 1]
    assert "Open case #" in _plain(r1)
    assert few == many, f"partner_detail: {few} queries with {N} cases, {many} with {3 * N}"
    assert few == pinned + PERMISSIONS_QUERY


# ---- inbox ----


@pytest.mark.parametrize(("username", "pinned"), [("cam", 5), ("manager", 5)])
def test_inbox(client, roles, username, pinned):
    user = roles[username]
    client.force_login(user)
    case = CaseFactory(state="step_4", actors=roles)
    Notification.objects.filter(recipient=user).delete()

    def setup(count):
        # As the app writes them (notifications.services.send, which drops the cached count).
        for i in range(count):
            (row,) = notify.send(
                [user],
                kind=NotificationKind.STEP_ASSIGNED,
                case=case if i % 2 else None,
                title=f"n{i}",
            )
            if i % 3 == 0:
                Notification.objects.filter(pk=row.pk).update(read_at=timezone.now())

    few, many, r1, r3 = _measure(client, setup, lambda: (reverse("inbox"), None), N)
    assert (_rows(r1), _rows(r3)) == (N, 3 * N)
    assert few == many, f"inbox: {few} queries with {N} rows, {many} with {3 * N}"
    # The inbox checks no permission itself; the navigation's console link does (offboarding's
    # context processor asks access.can_open_car_console).
    assert few == pinned + PERMISSIONS_QUERY
    # Until the next notification, the count comes from the cache: one query less.
    again, r4 = count_queries(client, reverse("inbox"))
    assert again == pinned - 1 + PERMISSIONS_QUERY
    assert _rows(r4) == 3 * N
