"""The case page's reads: the latest events of a long history with the whole swimlane, the
latest payments with their total, and step 8's order form offering the open orders, each at
a number of queries that does not grow with the case."""

import datetime as dt
import html
import re
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from offboarding.models import CaseEvent, EventKind, EvidenceFile
from offboarding.pages import PAYMENTS_SHOWN
from offboarding.selectors import HISTORY_SHOWN
from payouts.models import Order, Payment
from tests.factories import CaseFactory, PartnerFactory
from tests.test_queries import _case_at_step_9_with

pytestmark = pytest.mark.django_db


def _get(client, case, query="", url=None):
    with CaptureQueriesContext(connection) as ctx:
        response = client.get((url or reverse("case_detail", args=[case.pk])) + query)
    assert response.status_code == 200
    return response, len(ctx.captured_queries)


def _text(response):
    """The page as a person reads it: no tags, entities decoded, whitespace collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", response.content.decode())).split())


def _section(response, heading_id):
    """The HTML of the page's section labelled by the heading with `heading_id`."""
    body = response.content.decode()
    start = body.index(f'id="{heading_id}"')
    return body[start : body.index("</section>", start)]


def _history_items(response):
    """The history's entries, oldest first, each as the text a person reads."""
    items = re.findall(r"<li\b[^>]*>(.*?)</li>", _section(response, "history-heading"), re.S)
    return [" ".join(html.unescape(re.sub(r"<[^>]+>", " ", item)).split()) for item in items]


def _steps(response):
    """Each step's status and the user who completed it, as the swimlane's numbered list
    (what a narrow screen shows) says them: {number: (status, username or None)}."""
    section = _section(response, "swimlane-heading")
    listed = section[section.index("list-group-numbered") :]
    items = re.findall(r"<li\b[^>]*>(.*?)</li>", listed, re.S)
    steps = {}
    for number, item in enumerate(items, start=1):
        text = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", item)).split())
        status, _, done = text.rpartition(" — ")[2].partition(" · ")
        steps[number] = (status, done.split(" ")[0] or None)
    return steps


def _add_ledger_events(case, actor, count):
    """`count` newer ledger events, the newest with an evidence file."""
    start = timezone.now() + dt.timedelta(minutes=1)
    events = [
        CaseEvent.objects.create(
            case=case,
            kind=EventKind.LEDGER_CHANGED,
            actor=actor,
            created_at=start + dt.timedelta(seconds=i),
            data={"order": f"OR-{i}", "outcome": "closed"},
        )
        for i in range(count)
    ]
    EvidenceFile.objects.create(
        event=events[-1], file="evidence/x/receipt.pdf", original_name="receipt.pdf", size=2048
    )
    return events


def test_a_long_history_shows_its_latest_events_and_the_whole_swimlane(client, roles):
    client.force_login(roles["manager"])
    short = _case_at_step_9_with(roles, payouts=1, evidence=1)
    long = _case_at_step_9_with(roles, payouts=1, evidence=1)
    added = _add_ledger_events(long, roles["car"], HISTORY_SHOWN + 5)

    short_page, short_queries = _get(client, short)
    page, queries = _get(client, long)

    assert "Show the whole history" not in _text(short_page)
    assert len(_history_items(short_page)) == short.events.count()
    assert queries == short_queries
    history = _history_items(page)
    # The latest events only, oldest first: OR-5 onwards, never OR-0 to OR-4.
    assert len(history) == HISTORY_SHOWN
    for i, item in enumerate(history, start=5):
        assert f"Order OR-{i} Outcome closed" in item, item
    assert not any(re.search(r"\bOR-[0-4]\b", item) for item in history)
    assert "📎 receipt.pdf" in history[-1]
    download = reverse("evidence_download", args=[EvidenceFile.objects.get(event=added[-1]).pk])
    assert f'<a href="{download}">📎 receipt.pdf</a>' in page.content.decode()
    text = _text(page)
    assert f"Showing the latest {HISTORY_SHOWN} events." in text
    assert "Show the whole history" in text
    # The completed steps are older than every event shown, and still in the swimlane,
    # each with the user who completed it.
    steps = _steps(page)
    assert steps[9] == ("current", None)
    assert {steps[number][0] for number in (1, 4, 5, 6, 7, 8)} == {"done"}
    assert all(steps[number][1] for number in (1, 4, 5, 6, 7, 8))

    whole, whole_queries = _get(client, long, "?history=all")
    assert whole_queries == queries
    assert "Show the whole history" not in _text(whole)
    everything = _history_items(whole)
    assert len(everything) == long.events.count()
    assert everything[0].startswith("Case opened ")
    step_1 = next(item for item in everything if item.startswith("Step 1 ·"))
    assert re.findall(r"📎 (\S+)", step_1) == ["e0.pdf"]
    assert _steps(whole) == steps


def test_the_page_lists_the_latest_payments_newest_first_with_their_total(client, roles):
    case = _case_at_step_9_with(roles, payouts=PAYMENTS_SHOWN + 2, evidence=0)
    newest = list(
        Payment.objects.filter(case=case)
        .order_by("-paid_on", "-pk")
        .values_list("reference", flat=True)[:PAYMENTS_SHOWN]
    )

    client.force_login(roles["car"])  # car paid: four eyes, car may not verify
    page, _ = _get(client, case)
    text = _text(page)
    assert re.findall(r" · ref (\S+) · by car", text) == newest
    assert f"(the latest {PAYMENTS_SHOWN} of {PAYMENTS_SHOWN + 2};" in text
    verify = reverse("complete_step", args=[case.pk, 9])
    assert f'action="{verify}"' not in page.content.decode()
    assert "another CAR member must verify" in text

    client.force_login(roles["car2"])
    page, _ = _get(client, case)
    assert f'action="{verify}"' in page.content.decode()
    assert "another CAR member must verify" not in _text(page)


def test_the_cached_history_and_swimlane_follow_each_new_event(client, roles):
    from tests.step_posts import case_at, step_post

    client.force_login(roles["car"])
    case = case_at(8, roles)
    first, first_queries = _get(client, case)
    again, again_queries = _get(client, case)
    for heading in ("swimlane-heading", "history-heading"):
        assert _section(again, heading) == _section(first, heading)
    assert again_queries == first_queries - 1  # the history is not read again

    _add_ledger_events(case, roles["car"], 1)
    added, _ = _get(client, case)
    assert "Order OR-0 Outcome closed" in _history_items(added)[-1]
    assert _steps(added)[8] == ("current", None)

    posted = client.post(reverse("complete_step", args=[case.pk, 8]), step_post(case, 8))
    assert posted.status_code == 302
    moved, _ = _get(client, case)
    # (the ledger event above is dated a minute ahead: it stays the newest)
    assert any(item.startswith("Step 8 ·") for item in _history_items(moved))
    assert _steps(moved)[8] == ("done", "car")
    assert _steps(moved)[9] == ("current", None)

    # Who may not read money sees the history without it, never the copy drawn for CAR.
    client.force_login(roles["cam"])
    assert "OR-0" not in _text(_get(client, case)[0])


def test_car_sees_the_override_waiting_on_the_case_and_no_list_when_none_waits(client, roles):
    from tests.step_posts import case_at
    from tests.test_car_templates import _requested_override

    waiting = _requested_override(roles)
    quiet = case_at(8, roles)
    client.force_login(roles["car2"])

    text = _text(_get(client, waiting)[0])
    assert "Overrides waiting for a second CAR user" in text
    assert "Reason: Earned <before> the exit" in text
    assert "Approve" in text
    assert "Overrides waiting for a second CAR user" not in _text(_get(client, quiet)[0])


def test_step_8_order_form_offers_the_open_orders_without_reading_them_again(client, roles):
    client.force_login(roles["car"])
    cases = []
    for count in (1, 3):
        partner = PartnerFactory(cam=roles["cam"])
        case = CaseFactory(state="step_8", money=True, actors=roles, partner=partner)
        for i in range(count):
            Order.objects.create(
                partner=partner,
                reference=f"OR-{partner.pk}-{i}",
                ordered_on=timezone.localdate() - dt.timedelta(days=i),
                amount=Decimal("10.00"),
                currency="USD",
            )
        cases.append(case)

    # Opened without JavaScript: the case page with the order form drawn in its money panel.
    (few_page, few), (many_page, many) = (
        _get(client, case, url=reverse("money_form", args=[case.pk, "order"])) for case in cases
    )
    assert few == many
    cache.clear()  # the history drawn above is cached: read the plain page from nothing too
    assert few == _get(client, cases[0])[1]  # the page without the form reads no more
    for case, page in zip(cases, (few_page, many_page), strict=True):
        orders = list(
            Order.objects.filter(partner=case.partner).order_by("ordered_on", "reference")
        )
        text = page.content.decode()
        select = re.search(r'<select name="order".*?</select>', text, re.S).group()
        offered = re.findall(r'<option value="([^"]*)"', select)
        assert offered == ["", *(str(order.pk) for order in orders)]
        for order in orders:
            assert f'<option value="{order.pk}">{order}</option>' in text


def test_the_page_writes_history_swimlane_and_money_escaped(client, roles):
    """The parts drawn by the case page's includes, as a person reads them."""
    case = _case_at_step_9_with(roles, payouts=2, evidence=1)
    event = CaseEvent.objects.create(
        case=case,
        kind=EventKind.LEDGER_CHANGED,
        actor=roles["car"],
        created_at=timezone.now() + dt.timedelta(minutes=1),
        data={"order": "<OR-1>", "outcome": "closed"},
        note='<script>alert("x")</script>',
    )
    upload = EvidenceFile.objects.create(
        event=event, file="evidence/x/a.pdf", original_name="<b>.pdf", size=2048
    )
    Order.objects.create(
        partner=case.partner,
        reference="OR-<open>",
        ordered_on=timezone.localdate(),
        amount=Decimal("10.50"),
        currency="USD",
    )
    client.force_login(roles["manager"])
    page, _ = _get(client, case)
    body = page.content.decode()

    assert "<script>alert" not in body
    assert "“&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;”" in body
    assert '<dt class="col-5">Order</dt><dd class="col-7">&lt;OR-1&gt;</dd>' in body
    download = reverse("evidence_download", args=[upload.pk])
    assert f'<a href="{download}">📎 &lt;b&gt;.pdf</a> (2.0\xa0KB)' in body
    # The swimlane: five lanes of 13 cells on wide screens, 13 items on narrow ones.
    assert body.count('<th scope="row" class="lane-head">') == 5
    assert body.count('<td class="step step-') + body.count('<td class="step-empty">') == 65
    assert body.count('<li class="list-group-item step-') == 13
    assert '<td class="step step-current" title="9. ' in body
    assert "▶ now<br>due " in body
    # The open order, with the totals per currency.
    assert "<tr><td>OR-&lt;open&gt;</td><td>Open order</td><td>Open</td>" in body
    assert '<td class="text-end fw-bold">10.50 USD</td>' in body
    # Each payment recorded, newest first.
    payments = case.payments.order_by("-paid_on", "-pk")
    assert body.count("<li>") >= payments.count()
    for payment in payments:
        assert f" · ref {payment.reference} · by car</li>" in body
