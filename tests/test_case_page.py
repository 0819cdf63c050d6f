"""The case page's reads: the latest events of a long history with the whole swimlane, the
latest payments with their total, and step 8's order form offering the open orders, each at
a number of queries that does not grow with the case."""

import datetime as dt
import html
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from offboarding.models import CaseEvent, EventKind, EvidenceFile
from offboarding.selectors import HISTORY_SHOWN
from offboarding.views import PAYMENTS_SHOWN
from payouts.models import Order, Payment
from tests.factories import CaseFactory, PartnerFactory
from tests.test_queries import _case_at_step_9_with

pytestmark = pytest.mark.django_db


def _get(client, case, query=""):
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(reverse("case_detail", args=[case.pk]) + query)
    assert response.status_code == 200
    return response, len(ctx.captured_queries)


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

    assert short_page.context["history_complete"]
    assert queries == short_queries
    assert not page.context["history_complete"]
    history = page.context["history"]
    assert [event.pk for event in history] == [event.pk for event in added[-HISTORY_SHOWN:]]
    assert history[-1].files[0].name == "receipt.pdf"
    assert history[-1].files[0].url == reverse(
        "evidence_download", args=[EvidenceFile.objects.get(event=added[-1]).pk]
    )
    assert history[0].items == [("Order", "OR-5"), ("Outcome", "closed")]
    text = html.unescape(page.content.decode())
    assert f"Showing the latest {HISTORY_SHOWN} events." in text
    assert "Show the whole history" in text
    # The completed steps are older than every event shown, and still in the swimlane.
    statuses = {cell.step.number: cell.status for cell in page.context["cells"]}
    assert statuses[9] == "current"
    assert {statuses[number] for number in (1, 4, 5, 6, 7, 8)} == {"done"}
    assert all(cell.event.actor_username for cell in page.context["cells"][:8] if cell.event)

    whole, whole_queries = _get(client, long, "?history=all")
    assert whole_queries == queries
    assert whole.context["history_complete"]
    assert len(whole.context["history"]) == long.events.count()
    assert "Show the whole history" not in whole.content.decode()
    assert whole.context["history"][0].kind == EventKind.OPENED
    step_1 = next(event for event in whole.context["history"] if event.step_number == 1)
    assert [file.name for file in step_1.files] == ["e0.pdf"]
    assert {cell.status for cell in whole.context["cells"]} == set(statuses.values())


def test_the_page_lists_the_latest_payments_newest_first_with_their_total(client, roles):
    case = _case_at_step_9_with(roles, payouts=PAYMENTS_SHOWN + 2, evidence=0)
    newest = list(
        Payment.objects.filter(case=case)
        .order_by("-paid_on", "-pk")
        .values_list("reference", flat=True)[:PAYMENTS_SHOWN]
    )

    client.force_login(roles["car"])  # car paid: four eyes, car may not verify
    page, _ = _get(client, case)
    assert [payment.reference for payment in page.context["payments"]] == newest
    assert page.context["payments_total"] == PAYMENTS_SHOWN + 2
    text = html.unescape(page.content.decode())
    assert f"(the latest {PAYMENTS_SHOWN} of {PAYMENTS_SHOWN + 2};" in text
    assert page.context["step_form"] is None
    assert "another CAR member must verify" in text

    client.force_login(roles["car2"])
    page, _ = _get(client, case)
    assert page.context["step_form"] is not None
    assert page.context["waiting_reason"] == ""


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

    (few_page, few), (many_page, many) = (_get(client, case) for case in cases)
    assert few == many
    for case, page in zip(cases, (few_page, many_page), strict=True):
        orders = list(
            Order.objects.filter(partner=case.partner).order_by("ordered_on", "reference")
        )
        choices = list(page.context["order_form"].fields["order"].choices)
        assert [value for value, _ in choices] == ["", *(order.pk for order in orders)]
        text = page.content.decode()
        for order in orders:
            assert f'<option value="{order.pk}">{order}</option>' in text


def test_the_page_writes_history_swimlane_and_money_escaped(client, roles):
    """The parts drawn in Python (offboarding/case_page_html.py), as a person reads them."""
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
