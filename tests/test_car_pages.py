"""CAR's pages, clicked through the views: steps 7-9 with real money, the money forms'
refusals, who may touch money, the final statement and its CSV, the CAR console, the
payments-after-offboard report, and query-count pins for the money pages.

Every money change goes through a POST a person could send from the case page; the
ledger is set up with the models or the services, never changed behind a view's back
inside a test's assertion window.
"""

import csv
import datetime as dt
import html
import io
import re
import uuid
from decimal import Decimal

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from offboarding import services as case_services
from offboarding.models import Case, CaseEvent, EventKind
from offboarding.money import console, services
from offboarding.money.overrides import OverrideRequested, approve_override
from partners.models import Partner
from payouts.models import Commission, GuardOverride, Order, Payment, Payout
from tests.factories import CaseFactory, PartnerFactory, PayoutFactory
from tests.query_counts import PERMISSIONS_QUERY
from tests.step_posts import case_at, step_post

pytestmark = pytest.mark.django_db

MONEY_ACTIONS = (
    "add_payment",
    "pay_in_full",
    "void_payout",
    "resolve_order",
    "roll_up_commissions",
)
NOT_CAR = ("salesops", "cam", "portaladmin", "manager")
MONEY_READERS = ("car", "car2", "manager")
NOT_MONEY_READERS = ("cam", "salesops", "portaladmin")
EMPTY_REPORT = "None. No partner has been paid after leaving the program."


# ---- helpers ----


def _messages(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


def _text(response):
    return html.unescape(response.content.decode())


def _plain(fragment):
    """An HTML fragment as the words a person reads."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def _field_errors(response, field):
    """The errors drawn under form field `field` (whichever form's it is)."""
    body = response.content.decode()
    found = re.findall(rf'<p id="error_\d+_id_(?:\w+_)?{field}">(.*?)</p>', body, re.S)
    return [_plain(error) for error in found]


def _section(response, heading_id):
    """The HTML of the page's section whose heading has the id `heading_id`."""
    body = response.content.decode()
    start = body.index(f'id="{heading_id}"')
    return body[start : body.index("</section>", start)]


def _body_rows(fragment):
    """The cells of each row of the table body in `fragment`, as HTML."""
    tbody = re.search(r"<tbody>(.*?)</tbody>", fragment, re.S)
    rows = re.findall(r"<tr\b[^>]*>(.*?)</tr>", tbody.group(1) if tbody else "", re.S)
    return [re.findall(r"<td\b[^>]*>(.*?)</td>", row, re.S) for row in rows]


def _amounts(text):
    """ "250.00 USD 99.99 EUR" as {"USD": Decimal("250.00"), "EUR": Decimal("99.99")}."""
    return {
        currency: Decimal(amount) for amount, currency in re.findall(r"([\d.]+) ([A-Z]{3})", text)
    }


def _waiting_cases(response):
    """The console's cases waiting on money steps: {case id: open balance}."""
    return {
        int(_plain(cells[0]).lstrip("#")): _amounts(_plain(cells[3]))
        for cells in _body_rows(_section(response, "money-cases"))
    }


def _verification_queue(response):
    """The console's step-9 queue, in order: [(case id, what the badge says)]."""
    items = re.findall(r"<li\b[^>]*>(.*?)</li>", _section(response, "verify-queue"), re.S)
    return [
        (int(re.search(r"#(\d+)", item).group(1)), _plain(item.split("</span>", 1)[1]))
        for item in items
    ]


def _exception_rows(response):
    """The payments-after-offboard rows: each row's reference (the fifth column)."""
    body = response.content.decode()
    if 'aria-labelledby="exceptions"' in body:
        body = _section(response, "exceptions")
    return [_plain(cells[4]) for cells in _body_rows(body)]


def _statement(response):
    """The final statement as shown: [(payout reference, [payment references])] and the
    totals per currency {currency: (owed at notice, paid, remaining)}."""
    body = response.content.decode()
    lines = []
    for cells in _body_rows(body):
        if len(cells) < 4:
            continue  # "No payouts were owed at notice."
        payments = [_plain(p).split(" · ") for p in cells[3].split("<br>") if " · " in p]
        lines.append((_plain(cells[0].split("<br>")[0]), [p[1] for p in payments]))
    totals = {
        currency: (Decimal(owed), Decimal(paid), Decimal(remaining))
        for currency, owed, paid, remaining in re.findall(
            r"Total (\w+)</th><td[^>]*>([\d.]+)</td><td></td><td[^>]*>([\d.]+)</td>"
            r"<td[^>]*>([\d.]+)</td>",
            body,
        )
    }
    return lines, totals


def _today():
    return timezone.localdate()


def _case_url(case):
    return reverse("case_detail", args=[case.pk])


def _add_ledger_lines(partner, tag="J"):
    """An open USD commission (40.00) and an open EUR order (60.00) for `partner`."""
    today = _today()
    commission = Commission.objects.create(
        partner=partner,
        source="portal",
        reference=f"CM-{tag}-{partner.pk}",
        period_start=today - dt.timedelta(days=40),
        period_end=today - dt.timedelta(days=10),
        earned_on=today - dt.timedelta(days=5),
        amount=Decimal("40.00"),
        currency="USD",
    )
    order = Order.objects.create(
        partner=partner,
        reference=f"OR-{tag}-{partner.pk}",
        ordered_on=today - dt.timedelta(days=3),
        amount=Decimal("60.00"),
        currency="EUR",
    )
    return commission, order


def _money_case(roles, tag="M"):
    """A case at step 8 (CAR answered 'yes' at step 7) whose partner has open payouts
    (250.00 USD, 99.99 EUR), an open commission and an open order."""
    partner = PartnerFactory(cam=roles["cam"])
    case = CaseFactory(state="step_8", money=True, actors=roles, partner=partner)
    assert case.state == "step_8"
    commission, order = _add_ledger_lines(partner, tag)
    usd = Payout.objects.get(partner=partner, currency="USD")
    eur = Payout.objects.get(partner=partner, currency="EUR")
    return {"case": case, "usd": usd, "eur": eur, "commission": commission, "order": order}


def _payment_post(case, payout, **changes):
    data = {
        "expected_state": case.state,
        "idempotency_key": str(uuid.uuid4()),
        "payout": str(payout.pk),
        "amount": "10.00",
        "paid_on": _today().isoformat(),
        "method": "ach",
        "reference": f"ACH-{uuid.uuid4().hex[:8]}",
        "override_reason": "",
    }
    return _apply(data, changes)


def _pay_in_full_post(case, payouts, **changes):
    data = {
        "expected_state": case.state,
        "idempotency_key": str(uuid.uuid4()),
        "payouts_to_pay": [str(p.pk) for p in payouts],
        "paid_on": _today().isoformat(),
        "method": "ach",
        "batch_reference": f"BATCH-{uuid.uuid4().hex[:8]}",
    }
    return _apply(data, changes)


def _void_post(case, payout, **changes):
    data = {
        "expected_state": case.state,
        "idempotency_key": str(uuid.uuid4()),
        "payout": str(payout.pk),
        "reason": "Duplicate of another payout",
    }
    return _apply(data, changes)


def _order_post(case, order, **changes):
    data = {
        "expected_state": case.state,
        "idempotency_key": str(uuid.uuid4()),
        "order": str(order.pk),
        "outcome": "closed",
        "note": "",
    }
    return _apply(data, changes)


def _roll_up_post(case, **changes):
    return _apply({"expected_state": case.state}, changes)


def _apply(data, changes):
    """`changes` overrides fields; a value of None removes the field from the POST."""
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return data


def _valid_post(action, world):
    case = world["case"]
    if action == "add_payment":
        return _payment_post(case, world["usd"])
    if action == "pay_in_full":
        return _pay_in_full_post(case, [world["usd"], world["eur"]])
    if action == "void_payout":
        return _void_post(case, world["eur"])
    if action == "resolve_order":
        return _order_post(case, world["order"])
    return _roll_up_post(case)


def _ledger(case):
    """Everything a money action could change, to compare before and after."""
    return (
        Case.objects.get(pk=case.pk).state,
        CaseEvent.objects.count(),
        sorted(Payment.objects.values_list("reference", "amount", "payout_id")),
        sorted(Payout.objects.values_list("reference", "status", "paid_amount", "void_reason")),
        sorted(Order.objects.values_list("reference", "status", "resolution_note")),
        sorted(Commission.objects.values_list("reference", "status", "payout_id")),
        GuardOverride.objects.count(),
    )


def _complete(client, case, step, **changes):
    case.refresh_from_db()
    data = step_post(case, step)
    data.update(changes)
    return client.post(reverse("complete_step", args=[case.pk, step]), data)


# ---- the journey, as CAR clicks it ----


def test_car_journey_from_step_7_through_verification(client, roles):
    partner = PartnerFactory(cam=roles["cam"])
    case = CaseFactory(state="step_7", money=True, actors=roles, partner=partner)
    assert case.state == "step_7"
    commission, order = _add_ledger_lines(partner)
    usd = Payout.objects.get(partner=partner, currency="USD")
    eur = Payout.objects.get(partner=partner, currency="EUR")
    client.force_login(roles["car"])

    # Step 7: the open balance, line by line, with a total per currency.
    page = client.get(_case_url(case))
    assert page.status_code == 200
    text = _text(page)
    assert re.findall(r"Open balance (\w+)</th>", text) == ["EUR", "USD"]
    for reference in (usd.reference, eur.reference, commission.reference, order.reference):
        assert reference in text
    assert re.search(r"Open balance EUR</th>\s*<td[^>]*>159\.99 EUR", text)
    assert re.search(r"Open balance USD</th>\s*<td[^>]*>290\.00 USD", text)

    # "Nothing is owed" is refused on the field, and the case stays at step 7.
    refused = _complete(client, case, 7, money_on_table="no")
    assert refused.status_code == 400
    errors = _field_errors(refused, "money_on_table")
    assert any("'nothing is owed' is not possible" in e for e in errors), errors
    case.refresh_from_db()
    assert case.state == "step_7"

    response = _complete(client, case, 7, money_on_table="yes")
    assert response.status_code == 302
    case.refresh_from_db()
    assert case.state == "step_8"
    assert case.money_on_table is True

    # Step 8 cannot be completed while anything is open; the refusal says what is.
    early = _complete(client, case, 8)
    assert early.status_code == 403
    expected = (
        "2 payout(s) still open or pending, 1 open commission(s), 1 open order(s). "
        "Pay, void or resolve them first."
    )
    assert expected in _text(early)
    case.refresh_from_db()
    assert case.state == "step_8"

    # The open order is resolved as closed: it earns its commission.
    response = client.post(reverse("resolve_order", args=[case.pk]), _order_post(case, order))
    assert response.status_code == 302, _text(response)[:3000]
    assert any("Order resolved" in m for m in _messages(response))
    order.refresh_from_db()
    assert order.status == "closed"
    earned = Commission.objects.get(partner=partner, reference=order.reference)
    assert (earned.amount, earned.currency, earned.status) == (Decimal("60.00"), "EUR", "open")

    # Open commissions become one payout per currency.
    response = client.post(reverse("roll_up_commissions", args=[case.pk]), _roll_up_post(case))
    assert response.status_code == 302
    assert any("2 payout(s) created" in m for m in _messages(response))
    assert not Commission.objects.filter(partner=partner, status="open").exists()
    finals = {p.currency: p for p in Payout.objects.filter(reference__startswith="FINAL-")}
    assert (finals["USD"].amount, finals["EUR"].amount) == (Decimal("40.00"), Decimal("60.00"))

    # One payment by hand.
    key = uuid.uuid4()
    response = client.post(
        reverse("add_payment", args=[case.pk]),
        _payment_post(
            case,
            usd,
            amount="100.00",
            method="wire",
            reference="WIRE-J-1",
            idempotency_key=str(key),
        ),
    )
    assert response.status_code == 302, _text(response)[:3000]
    assert any("Payment recorded" in m for m in _messages(response))
    payment = Payment.objects.get()
    assert (payment.amount, payment.method, payment.idempotency_key) == (
        Decimal("100.00"),
        "wire",
        key,
    )
    usd.refresh_from_db()
    assert (usd.status, usd.paid_amount, usd.remaining) == (
        "pending",
        Decimal("100.00"),
        Decimal("150.00"),
    )

    # Still not settled: step 8 is refused again, naming what is left.
    early = _complete(client, case, 8)
    assert early.status_code == 403
    assert "4 payout(s) still open or pending, 0 open commission(s), 0 open order(s)" in (
        _text(early)
    )
    case.refresh_from_db()
    assert case.state == "step_8"

    # The rest in one batch.
    outstanding = list(case.outstanding_payouts())
    assert len(outstanding) == 4
    response = client.post(
        reverse("pay_in_full", args=[case.pk]),
        _pay_in_full_post(case, outstanding, batch_reference="BATCH-J"),
    )
    assert response.status_code == 302, _text(response)[:3000]
    assert any("paid in full" in m for m in _messages(response))
    assert not case.outstanding_payouts().exists()
    batch = Payment.objects.exclude(pk=payment.pk)
    assert sorted(batch.values_list("reference", flat=True)) == sorted(
        f"BATCH-J/{p.reference}" for p in outstanding
    )
    assert batch.get(payout=usd).amount == Decimal("150.00")

    # Now step 8 completes.
    response = _complete(client, case, 8)
    assert response.status_code == 302
    case.refresh_from_db()
    assert case.state == "step_9"

    # The payer cannot verify: told so, and no verify form.
    page = client.get(_case_url(case))
    assert page.status_code == 200
    assert "another CAR member must verify" in _text(page)
    assert reverse("complete_step", args=[case.pk, 9]) not in _text(page)

    # A second CAR member verifies.
    client.force_login(roles["car2"])
    page = client.get(_case_url(case))
    assert f'action="{reverse("complete_step", args=[case.pk, 9])}"' in _text(page)
    assert "another CAR member must verify" not in _text(page)
    response = _complete(client, case, 9)
    assert response.status_code == 302
    case.refresh_from_db()
    assert case.state == "step_10"

    # The final statement lists every payment with its reference; the totals add up.
    payments = list(Payment.objects.order_by("pk"))
    assert len(payments) == 5
    statement = client.get(reverse("final_statement", args=[case.pk]))
    assert statement.status_code == 200
    text = _text(statement)
    for p in payments:
        assert p.reference in text
    lines, totals = _statement(statement)
    assert totals == {
        "EUR": (Decimal("159.99"), Decimal("159.99"), Decimal("0.00")),
        "USD": (Decimal("290.00"), Decimal("290.00"), Decimal("0.00")),
    }
    listed = [reference for _, references in lines for reference in references]
    assert sorted(listed) == sorted(p.reference for p in payments)
    for currency, (_, paid, _) in totals.items():
        assert paid == sum(p.amount for p in payments if p.currency == currency)

    # The CSV: a header row, one row per payment, a TOTAL row per currency.
    download = client.get(reverse("final_statement", args=[case.pk]), {"format": "csv"})
    assert download.status_code == 200
    assert download["Content-Type"].startswith("text/csv")
    assert download["Content-Disposition"] == (
        f'attachment; filename="statement-case-{case.pk}.csv"'
    )
    rows = list(csv.reader(io.StringIO(download.content.decode("utf-8"))))
    assert rows[0][:4] == ["partner", partner.display_name, "record id", partner.record_id]
    header = rows[1]
    assert header[:4] == ["payout", "currency", "status", "owed_at_notice"]
    body = [dict(zip(header, row, strict=True)) for row in rows[2:]]
    payment_rows = [row for row in body if row["payout"] != "TOTAL"]
    total_rows = [row for row in body if row["payout"] == "TOTAL"]
    assert len(payment_rows) == len(payments)
    assert sorted(row["payment_reference"] for row in payment_rows) == sorted(
        p.reference for p in payments
    )
    for row in payment_rows:
        p = next(p for p in payments if p.reference == row["payment_reference"])
        assert (row["paid"], row["currency"], row["paid_on"], row["recorded_by"]) == (
            str(p.amount),
            p.currency,
            p.paid_on.isoformat(),
            "car",
        )
    assert {
        row["currency"]: (row["owed_at_notice"], row["paid"], row["remaining"])
        for row in total_rows
    } == {
        "EUR": ("159.99", "159.99", "0.00"),
        "USD": ("290.00", "290.00", "0.00"),
    }
    assert [row["payout"] for row in body[-2:]] == ["TOTAL", "TOTAL"]


# ---- idempotency through the view ----


def test_double_click_on_a_partial_payment_records_it_once(client, roles):
    world = _money_case(roles)
    case = world["case"]
    client.force_login(roles["car"])
    data = _payment_post(case, world["usd"], amount="50.00", reference="ACH-DBL-1")
    events = case.events.count()

    first = client.post(reverse("add_payment", args=[case.pk]), data)
    second = client.post(reverse("add_payment", args=[case.pk]), data)

    assert first.status_code == second.status_code == 302
    assert first["Location"] == second["Location"] == _case_url(case)
    assert Payment.objects.count() == 1
    world["usd"].refresh_from_db()
    assert world["usd"].paid_amount == Decimal("50.00")
    assert case.events.filter(kind=EventKind.PAYMENT_RECORDED).count() == 1
    assert case.events.count() == events + 1


def test_double_click_on_a_full_payment_records_it_once_and_both_redirect(client, roles):
    """The usual double click: the whole remaining amount. The second POST carries the same
    idempotency key, so it is the same payment and must be answered as a success, not as
    'that payout is no longer open'."""
    world = _money_case(roles)
    case = world["case"]
    client.force_login(roles["car"])
    data = _payment_post(case, world["usd"], amount="250.00", reference="ACH-DBL-FULL")

    first = client.post(reverse("add_payment", args=[case.pk]), data)
    second = client.post(reverse("add_payment", args=[case.pk]), data)

    assert Payment.objects.count() == 1
    world["usd"].refresh_from_db()
    assert world["usd"].status == "paid"
    assert first.status_code == 302
    assert second.status_code == 302, (
        f"second POST with the same idempotency key -> {second.status_code}: "
        + str(_field_errors(second, "amount") or _text(second)[:2000])
    )


def test_resubmitted_batch_records_nothing_new_and_redirects(client, roles):
    """services.pay_in_full promises that resubmitting the batch records nothing new; the
    view should answer the replay (same idempotency key) as the success it was."""
    world = _money_case(roles)
    case = world["case"]
    client.force_login(roles["car"])
    data = _pay_in_full_post(case, [world["usd"], world["eur"]], batch_reference="BATCH-DBL")

    first = client.post(reverse("pay_in_full", args=[case.pk]), data)
    second = client.post(reverse("pay_in_full", args=[case.pk]), data)

    assert Payment.objects.count() == 2
    assert first.status_code == 302
    assert second.status_code == 302, f"resubmitted batch -> {second.status_code}: " + str(
        _field_errors(second, "payouts_to_pay") or _text(second)[:2000]
    )


def test_same_payment_reference_under_another_key_is_refused(client, roles):
    world = _money_case(roles)
    case = world["case"]
    client.force_login(roles["car"])
    first = client.post(
        reverse("add_payment", args=[case.pk]),
        _payment_post(case, world["usd"], amount="20.00", reference="ACH-SAME"),
    )
    assert first.status_code == 302
    before = _ledger(case)

    second = client.post(
        reverse("add_payment", args=[case.pk]),
        _payment_post(case, world["eur"], amount="20.00", reference="ACH-SAME"),
    )

    assert second.status_code == 400
    message = "Payment reference ACH-SAME is already recorded"
    assert message in _text(second)
    assert _ledger(case) == before
    assert Payment.objects.count() == 1


# ---- bad input on each money form ----


BAD_PAYMENTS = {
    "amount-abc": ({"amount": "abc"}, "amount", "Enter the amount as a positive decimal"),
    "amount-negative": ({"amount": "-1"}, "amount", "The amount must be positive"),
    "amount-zero": ({"amount": "0"}, "amount", "The amount must be positive"),
    "amount-cents": ({"amount": "1.234"}, "amount", "at most two decimal places"),
    "future-date": ("FUTURE", "paid_on", "The payment date cannot be in the future."),
    "no-method": ({"method": None}, "method", "This field is required."),
    "no-reference": ({"reference": ""}, "reference", "This field is required."),
}


@pytest.mark.parametrize("name", sorted(BAD_PAYMENTS))
def test_bad_payment_keeps_the_input_and_says_what_is_wrong(client, roles, name):
    changes, field, message = BAD_PAYMENTS[name]
    if changes == "FUTURE":
        changes = {"paid_on": (_today() + dt.timedelta(days=1)).isoformat()}
    world = _money_case(roles)
    case = world["case"]
    client.force_login(roles["car"])
    data = _apply(_payment_post(case, world["usd"], reference="KEEP-REF-1"), changes)
    before = _ledger(case)

    response = client.post(reverse("add_payment", args=[case.pk]), data)

    assert response.status_code == 400
    errors = _field_errors(response, field)
    assert any(message in e for e in errors), errors
    text = _text(response)
    assert message in text
    # What was entered is still there.
    for key in ("amount", "paid_on", "reference"):
        if data.get(key):
            assert f'value="{data[key]}"' in text, key
    assert re.search(rf'<option value="{world["usd"].pk}"[^>]*selected', text)
    assert _ledger(case) == before


@pytest.mark.parametrize(
    ("name", "changes", "field"),
    [
        ("no-payout", {"payouts_to_pay": None}, "payouts_to_pay"),
        ("no-batch-reference", {"batch_reference": ""}, "batch_reference"),
        ("future-date", "FUTURE", "paid_on"),
    ],
)
def test_bad_pay_in_full_keeps_the_input_and_says_what_is_wrong(
    client, roles, name, changes, field
):
    if changes == "FUTURE":
        changes = {"paid_on": (_today() + dt.timedelta(days=3)).isoformat()}
    world = _money_case(roles)
    case = world["case"]
    client.force_login(roles["car"])
    data = _pay_in_full_post(case, [world["usd"]], batch_reference="BATCH-KEEP")
    data = _apply(data, changes)
    before = _ledger(case)

    response = client.post(reverse("pay_in_full", args=[case.pk]), data)

    assert response.status_code == 400
    assert _field_errors(response, field), _text(response)[:3000]
    text = _text(response)
    if data.get("batch_reference"):
        assert 'value="BATCH-KEEP"' in text
    if data.get("payouts_to_pay"):
        assert re.search(
            rf'<input[^>]*name="payouts_to_pay"[^>]*value="{world["usd"].pk}"[^>]*checked', text
        )
    assert _ledger(case) == before


def test_void_without_a_reason_is_refused(client, roles):
    world = _money_case(roles)
    case = world["case"]
    client.force_login(roles["car"])
    before = _ledger(case)

    response = client.post(
        reverse("void_payout", args=[case.pk]), _void_post(case, world["eur"], reason="")
    )

    assert response.status_code == 400
    assert _field_errors(response, "reason") == ["This field is required."]
    text = _text(response)
    assert re.search(rf'<option value="{world["eur"].pk}"[^>]*selected', text)
    assert _ledger(case) == before


def test_void_with_a_reason_is_recorded(client, roles):
    """The counterpart of the refusal: a reason voids the payout."""
    world = _money_case(roles)
    case = world["case"]
    client.force_login(roles["car"])

    response = client.post(reverse("void_payout", args=[case.pk]), _void_post(case, world["eur"]))

    assert response.status_code == 302
    world["eur"].refresh_from_db()
    assert (world["eur"].status, world["eur"].void_reason) == (
        "void",
        "Duplicate of another payout",
    )


def test_cancelled_order_without_a_note_is_refused(client, roles):
    world = _money_case(roles)
    case = world["case"]
    client.force_login(roles["car"])
    before = _ledger(case)

    response = client.post(
        reverse("resolve_order", args=[case.pk]),
        _order_post(case, world["order"], outcome="cancelled", note="  "),
    )

    assert response.status_code == 400
    assert "Say why the order is cancelled." in _field_errors(response, "note")
    text = _text(response)
    assert "Say why the order is cancelled." in text
    assert re.search(r'<input[^>]*name="outcome"[^>]*value="cancelled"[^>]*checked', text)
    assert re.search(rf'<option value="{world["order"].pk}"[^>]*selected', text)
    assert _ledger(case) == before


@pytest.mark.parametrize("action", ["add_payment", "pay_in_full", "void_payout", "resolve_order"])
def test_another_partners_line_in_a_tampered_post_is_refused(client, roles, action):
    world = _money_case(roles)
    case = world["case"]
    other = _money_case(roles, tag="OTHER")
    client.force_login(roles["car"])
    field = {
        "add_payment": "payout",
        "pay_in_full": "payouts_to_pay",
        "void_payout": "payout",
        "resolve_order": "order",
    }[action]
    data = _valid_post(action, world)
    if action == "pay_in_full":
        data[field] = [str(world["usd"].pk), str(other["usd"].pk)]
    elif action == "resolve_order":
        data[field] = str(other["order"].pk)
    else:
        data[field] = str(other["eur"].pk)
    before = _ledger(case)

    response = client.post(reverse(action, args=[case.pk]), data)

    assert response.status_code == 400
    errors = _field_errors(response, field)
    assert errors
    assert any(("valid choice" in e or "no longer open" in e) for e in errors), errors
    assert _ledger(case) == before


@pytest.mark.parametrize("action", MONEY_ACTIONS)
def test_stale_expected_state_is_told_the_case_moved_on(client, roles, action):
    world = _money_case(roles)
    case = world["case"]
    client.force_login(roles["car"])
    data = _valid_post(action, world) | {"expected_state": "step_7"}
    before = _ledger(case)

    response = client.post(reverse(action, args=[case.pk]), data)

    assert response.status_code == 302
    assert response["Location"] == _case_url(case)
    assert any("moved on" in m for m in _messages(response))
    assert _ledger(case) == before


def test_payment_form_of_a_case_that_moved_on_is_told_so(client, roles):
    """A payment form opened at step 8 and submitted after another CAR member paid and
    completed step 8: the person must learn that the case moved on, not get a page with
    no explanation."""
    world = _money_case(roles)
    case = world["case"]
    client.force_login(roles["car"])
    stale = _payment_post(case, world["usd"], amount="250.00")
    for payout in case.outstanding_payouts():
        services.record_payment(
            actor=roles["car2"],
            case_id=case.pk,
            payout_id=payout.pk,
            amount=payout.remaining,
            paid_on=_today(),
            reference=f"ACH-OTHER-{payout.pk}",
        )
    for order in Order.objects.filter(partner=case.partner, status="open"):
        services.resolve_order(
            actor=roles["car2"], case_id=case.pk, order_id=order.pk, outcome="cancelled", note="x"
        )
    Commission.objects.filter(partner=case.partner, status="open").update(status="void")
    case = case_services.complete_step(
        actor=roles["car2"], case_id=case.pk, step_number=8, expected_state="step_8", data={}
    )
    assert case.state == "step_9"
    before = _ledger(case)

    response = client.post(reverse("add_payment", args=[case.pk]), stale)

    assert _ledger(case) == before
    told = any("moved on" in m for m in _messages(response)) or "moved on" in _text(response)
    assert told, f"status {response.status_code}, no 'moved on' message"


# ---- who may touch money ----


@pytest.mark.parametrize("action", MONEY_ACTIONS)
@pytest.mark.parametrize("username", NOT_CAR)
def test_money_posts_by_other_roles_are_refused(client, roles, username, action):
    world = _money_case(roles)
    case = world["case"]
    client.force_login(roles[username])
    before = _ledger(case)

    response = client.post(reverse(action, args=[case.pk]), _valid_post(action, world))

    assert response.status_code == 302
    assert response["Location"] == _case_url(case)
    assert any("Only CAR can change what is paid or owed." in m for m in _messages(response))
    assert _ledger(case) == before


@pytest.mark.parametrize("action", MONEY_ACTIONS)
def test_money_posts_by_a_cam_who_cannot_see_the_case_are_404(client, roles, action):
    world = _money_case(roles)
    case = world["case"]
    client.force_login(roles["cam2"])
    before = _ledger(case)

    response = client.post(reverse(action, args=[case.pk]), _valid_post(action, world))

    assert response.status_code == 404
    assert _ledger(case) == before


@pytest.mark.parametrize("action", MONEY_ACTIONS)
def test_money_posts_by_car2_are_accepted(client, roles, action):
    """The counterpart of the refusals: any CAR member may act at step 8."""
    world = _money_case(roles)
    case = world["case"]
    client.force_login(roles["car2"])
    before = _ledger(case)

    response = client.post(reverse(action, args=[case.pk]), _valid_post(action, world))

    assert response.status_code == 302, _text(response)[:3000]
    assert not any("Only CAR" in m for m in _messages(response))
    assert _ledger(case) != before


@pytest.mark.parametrize("action", MONEY_ACTIONS)
def test_money_views_answer_get_with_405(client, roles, action):
    world = _money_case(roles)
    case = world["case"]
    client.force_login(roles["car"])
    before = _ledger(case)

    response = client.get(reverse(action, args=[case.pk]))

    assert response.status_code == 405
    assert "POST" in response["Allow"]
    assert _ledger(case) == before


@pytest.mark.parametrize("username", [*MONEY_READERS, *NOT_MONEY_READERS, "cam2"])
def test_final_statement_access(client, roles, username):
    case = case_at(9, roles)
    client.force_login(roles[username])
    url = reverse("final_statement", args=[case.pk])

    page = client.get(url)
    download = client.get(url, {"format": "csv"})

    if username in MONEY_READERS:
        expected = 200
    elif username == "cam2":
        expected = 404
    else:
        expected = 403
    assert (page.status_code, download.status_code) == (expected, expected)
    if expected == 200:
        assert "Final statement" in _text(page)
        assert download["Content-Disposition"].startswith("attachment;")
    else:
        assert "ACH-" not in _text(page)
        assert not download.get("Content-Disposition")


def test_final_statement_lists_every_line_escaped(client, roles):
    """Every line of a long statement is on the page, in order, with its payments, status
    and method labels; text from the ledger is escaped."""
    world = _money_case(roles)
    case = world["case"]
    Payout.objects.filter(pk=world["eur"].pk).update(description="<i>Q3</i> & more")
    extra = [PayoutFactory(partner=case.partner, amount=Decimal("10.00")) for _ in range(30)]
    services.record_payment(
        actor=roles["car"],
        case_id=case.pk,
        payout_id=world["usd"].pk,
        amount=Decimal("50.00"),
        paid_on=_today(),
        method="check",
        reference="CHQ-<1>",
    )
    services.void_payout(
        actor=roles["car"],
        case_id=case.pk,
        payout_id=extra[0].pk,
        reason="Duplicate <of> PO-1",
        expected_state=case.state,
    )
    client.force_login(roles["manager"])

    response = client.get(reverse("final_statement", args=[case.pk]))

    content = response.content.decode()
    lines, _ = _statement(response)
    assert len(lines) == 32
    body = content.split("<tbody>")[1].split("</tbody>")[0]
    assert body.count("<tr>") == 32
    # Each payout once, in the statement's order: by earned date, then reference.
    shown = [reference for reference, _ in lines]
    expected = Payout.objects.filter(reference__in=shown).order_by("earned_on", "reference")
    assert shown == [payout.reference for payout in expected]
    assert "<i>Q3</i>" not in content and "&lt;i&gt;Q3&lt;/i&gt; &amp; more" in content
    assert f"{_today().isoformat()} · CHQ-&lt;1&gt; · Cheque · car · 50.00<br>" in content
    assert "<td>Void<br><small>Duplicate &lt;of&gt; PO-1</small></td>" in content
    assert '<td class="text-end">200.00 USD</td></tr>' in content  # 250.00 - 50.00 remains
    assert "Commission CM-M-" in content and "Order OR-M-" in content


@pytest.mark.parametrize("url_name", ["car_console", "payments_after_offboard"])
@pytest.mark.parametrize("username", [*MONEY_READERS, *NOT_MONEY_READERS])
def test_console_and_report_access(client, roles, username, url_name):
    client.force_login(roles[username])

    response = client.get(reverse(url_name))

    assert response.status_code == (200 if username in MONEY_READERS else 403)


# ---- the console ----


def test_console_lists_money_cases_with_balances_and_the_verification_queue(client, roles):
    at_7 = case_at(7, roles)
    at_8 = case_at(8, roles)  # all paid by car ...
    PayoutFactory(partner=at_8.partner, amount=Decimal("100.00"))  # ... and one more owed
    at_9 = case_at(9, roles)  # car paid
    at_11 = case_at(11, roles)
    elsewhere = [case_at(5, roles), case_at(10, roles)]

    for username, badge, not_badge in (
        ("car", "You recorded payments", "You can verify"),
        ("car2", "You can verify", "You recorded payments"),
    ):
        client.force_login(roles[username])
        response = client.get(reverse("car_console"))
        assert response.status_code == 200
        rows = _waiting_cases(response)
        assert set(rows) == {at_7.pk, at_8.pk, at_11.pk}
        [(queued, says)] = _verification_queue(response)
        assert queued == at_9.pk
        assert says.startswith(badge)
        assert rows[at_7.pk] == {"EUR": Decimal("99.99"), "USD": Decimal("250.00")}
        assert rows[at_8.pk] == {"USD": Decimal("100.00")}
        assert rows[at_11.pk] == {}
        text = _text(response)
        for case in (at_7, at_8, at_9, at_11):
            assert case.partner.display_name in text
        for case in elsewhere:
            assert reverse("case_detail", args=[case.pk]) + '"' not in text
        assert "250.00 USD" in text and "99.99 EUR" in text
        assert badge in text
        assert not_badge not in text
        assert EMPTY_REPORT in text


def test_console_shows_the_first_cases_of_each_list_with_totals_and_links(
    client, roles, monkeypatch
):
    """Lists that grow with the data show their first CONSOLE_LIST_SIZE rows (soonest due
    first), the total, and a link to the whole list."""
    monkeypatch.setattr(console, "CONSOLE_LIST_SIZE", 2)
    now = timezone.now()
    waiting = [case_at(n, roles) for n in (7, 8, 7, 11)]
    verifying = [case_at(9, roles) for _ in range(3)]
    for days, case in enumerate([*waiting, *verifying]):
        Case.objects.filter(pk=case.pk).update(step_due_at=now + dt.timedelta(days=days + 1))
    for i in range(3):
        _forced_late_payment(roles, reference=f"LATE-C-{i}")
    client.force_login(roles["car"])

    response = client.get(reverse("car_console"))

    assert len(_waiting_cases(response)) == 2
    queue = [pk for pk, _ in _verification_queue(response)]
    assert queue == [c.pk for c in verifying[:2]]
    assert len(_exception_rows(response)) == 2
    text = _text(response)
    assert f"The 2 due soonest of {len(waiting) + 3}." in text
    assert "The 2 due soonest of 3." in text
    assert f'{reverse("case_list")}?state=open&lane=car"' in text
    assert f'{reverse("case_list")}?state=step_9"' in text
    assert "The latest 2." in text
    for pk in queue:
        assert f'href="{reverse("final_statement", args=[pk])}"' in text
        assert f'href="{reverse("case_detail", args=[pk])}"' in text


def test_console_rows_escape_partner_names(client, roles):
    case = case_at(7, roles)
    Partner.objects.filter(pk=case.partner_id).update(display_name="<b>Bold & Co</b>")
    verifying = case_at(9, roles)
    Partner.objects.filter(pk=verifying.partner_id).update(display_name="<i>Nine</i>")
    client.force_login(roles["car"])

    content = client.get(reverse("car_console")).content.decode()

    assert "<b>Bold" not in content and "<i>Nine" not in content
    assert "&lt;b&gt;Bold &amp; Co&lt;/b&gt;" in content
    assert f"#{verifying.pk} &lt;i&gt;Nine&lt;/i&gt;</a>" in content


def test_the_console_index_covers_the_console_states():
    """The partial index the console reads holds exactly the console's money states."""
    (index,) = [index for index in Case._meta.indexes if index.name == "car_case_due_idx"]
    (lookup, states) = index.condition.children[0]
    assert lookup == "state__in"
    assert sorted(states) == sorted(console.MONEY_STATES)


# ---- the exceptions report ----


def _forced_late_payment(roles, *, reference="LATE-1", reason="Controller approved: Q3 true-up"):
    """A case at step 8 whose partner's offboard date is already past, and a payment dated
    today forced through with CAR's override."""
    case = _money_case(roles, tag=reference)["case"]
    payout = PayoutFactory(partner=case.partner, amount=Decimal("75.00"))
    offboard = _today() - dt.timedelta(days=5)
    _set_offboard_date(case, offboard)
    payment = _paid_with_override(roles, case, payout, reference=reference, reason=reason)
    return case, payment, offboard


def _set_offboard_date(case, offboard):
    """The case's offboard date (the guard's, from step 2/3) and the record's."""
    Case.objects.filter(pk=case.pk).update(offboard_date=offboard)
    Partner.objects.filter(pk=case.partner_id).update(offboard_date=offboard)


def _paid_with_override(roles, case, payout, *, reference, reason):
    """Decision D: CAR asks for the override, the second CAR user approves, CAR pays."""
    pay = {
        "actor": roles["car"],
        "case_id": case.pk,
        "payout_id": payout.pk,
        "amount": Decimal("75.00"),
        "paid_on": _today(),
        "reference": reference,
    }
    with pytest.raises(OverrideRequested):
        services.record_payment(**pay, override_reason=reason)
    override = GuardOverride.objects.get(payout=payout, status="pending")
    approve_override(actor=roles["car2"], override_id=override.pk)
    return services.record_payment(**pay)


def test_exceptions_report_is_empty_for_a_clean_run(client, roles):
    case = case_at(9, roles)
    assert case.payments.exists()
    client.force_login(roles["car"])

    report = client.get(reverse("payments_after_offboard"))
    console = client.get(reverse("car_console"))

    assert _exception_rows(report) == []
    assert EMPTY_REPORT in _text(report)
    assert _exception_rows(console) == []
    assert EMPTY_REPORT in _text(console)


def test_exceptions_rows_escape_what_the_ledger_holds(client, roles):
    case, payment, offboard = _forced_late_payment(
        roles, reference="LATE-<1>", reason="Controller's <b>OK</b> & more"
    )
    Partner.objects.filter(pk=case.partner_id).update(display_name="<i>Gone</i> & Co")
    client.force_login(roles["car"])

    for url in (reverse("payments_after_offboard"), reverse("car_console")):
        content = client.get(url).content.decode()
        assert "<i>Gone" not in content and "<b>OK" not in content and "LATE-<1>" not in content
        assert (
            f"<tr><td>&lt;i&gt;Gone&lt;/i&gt; &amp; Co</td><td>{offboard.isoformat()}</td>"
            f'<td>{_today().isoformat()}</td><td class="text-end">75.00 USD</td>'
            f"<td>LATE-&lt;1&gt;</td><td>car</td>"
            f"<td>Controller&#x27;s &lt;b&gt;OK&lt;/b&gt; &amp; more</td></tr>"
        ) in content, url


def test_a_late_payment_needs_an_override_and_is_then_reported(client, roles):
    case = _money_case(roles)["case"]  # nothing paid yet
    payout = PayoutFactory(partner=case.partner, amount=Decimal("75.00"))
    _set_offboard_date(case, _today() - dt.timedelta(days=5))
    with pytest.raises(case_services.ActionRefused, match="left the program on"):
        services.record_payment(
            actor=roles["car"],
            case_id=case.pk,
            payout_id=payout.pk,
            amount=Decimal("75.00"),
            paid_on=_today(),
            reference="LATE-NO-OVERRIDE",
        )
    assert not Payment.objects.filter(reference="LATE-NO-OVERRIDE").exists()

    reason = "Controller approved: final true-up owed before the exit"
    payment = _paid_with_override(roles, case, payout, reference="LATE-OVERRIDE", reason=reason)
    assert payment.override.reason == reason
    assert payment.override.approved_by == roles["car2"]
    partner = Partner.objects.get(pk=case.partner_id)

    for username in ("car", "manager"):
        client.force_login(roles[username])
        report = client.get(reverse("payments_after_offboard"))
        console = client.get(reverse("car_console"))
        assert _exception_rows(report) == [payment.reference]
        assert _exception_rows(console) == [payment.reference]
        for response in (report, console):
            text = _text(response)
            assert EMPTY_REPORT not in text
            assert "LATE-OVERRIDE" in text
            assert reason in text
            assert partner.display_name in text
            assert partner.offboard_date.isoformat() in text
            assert "75.00" in text


# ---- query-count pins ----

N = 2


def _count(client, url, data=None):
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url, data or {})
    assert response.status_code == 200, f"{url} -> {response.status_code}"
    return len(ctx.captured_queries), response


CONSOLE_STATES = ("step_7", "step_8", "step_9", "step_11")


def _console_cases(roles, per_state):
    for _ in range(per_state):
        for state in CONSOLE_STATES:
            CaseFactory(
                state=state,
                money=True,
                actors=roles,
                partner_kwargs={"beta": state == "step_11"},
            )


# The console reads its lists, counts and the overrides awaiting approval: 9 queries.
@pytest.mark.parametrize(("username", "pinned"), [("car", 9), ("manager", 9)])
def test_console_query_count_does_not_grow_with_cases(client, roles, username, pinned):
    """N cases at each of steps 7, 8, 9 and 11, then 3N: the same number of queries."""
    client.force_login(roles[username])
    _forced_late_payment(roles, reference="LATE-Q-1")

    _console_cases(roles, 1)
    few, r1 = _count(client, reverse("car_console"))
    _console_cases(roles, 2)
    many, r3 = _count(client, reverse("car_console"))

    sizes = [(len(_waiting_cases(r)), len(_verification_queue(r))) for r in (r1, r3)]
    assert sizes == [(3 + 1, 1), (3 * 3 + 1, 3)]  # + the step-8 case of the late payment
    assert few == many, f"car_console: {few} queries with N cases, {many} with 3N"
    assert few == pinned + PERMISSIONS_QUERY


def _pay_small_amounts(case, roles, count, start):
    for i in range(start, start + count):
        payout = PayoutFactory(partner=case.partner, amount=Decimal("10.00"))
        services.record_payment(
            actor=roles["car" if i % 2 else "car2"],
            case_id=case.pk,
            payout_id=payout.pk,
            amount=Decimal("10.00"),
            paid_on=_today(),
            method=["ach", "wire", "check", "card"][i % 4],
            reference=f"ACH-Q-{case.pk}-{i}",
        )


@pytest.mark.parametrize("fmt", ["html", "csv"])
def test_statement_query_count_does_not_grow_with_payments(client, roles, fmt):
    client.force_login(roles["car"])
    case = case_at(8, roles)
    base = case.payments.count()
    url = reverse("final_statement", args=[case.pk])
    params = {"format": "csv"} if fmt == "csv" else None

    _pay_small_amounts(case, roles, N, 0)
    few, r1 = _count(client, url, params)
    _pay_small_amounts(case, roles, 2 * N, N)
    many, r3 = _count(client, url, params)

    if fmt == "html":
        statements = [_statement(r)[0] for r in (r1, r3)]
        counts = [sum(len(references) for _, references in s) for s in statements]
    else:
        counts = [
            sum(
                1
                for row in csv.reader(io.StringIO(r.content.decode()))
                if row[4].startswith("ACH-")
            )
            for r in (r1, r3)
        ]
    assert counts == [base + N, base + 3 * N]
    assert few == many, f"statement ({fmt}): {few} queries with N payments, {many} with 3N"
    assert few == {"html": 6, "csv": 5}[fmt] + PERMISSIONS_QUERY


def test_exceptions_report_query_count_does_not_grow_with_rows(client, roles):
    client.force_login(roles["car"])

    def late_rows(count, start):
        for i in range(start, start + count):
            partner = PartnerFactory(cam=roles["cam"])
            Partner.objects.filter(pk=partner.pk).update(
                offboard_date=_today() - dt.timedelta(days=3 + i)
            )
            payout = PayoutFactory(partner=partner, amount=Decimal("5.00"))
            maker, checker = ("car", "car2") if i % 2 else ("car2", "car")
            pay = {
                "payout_id": payout.pk,
                "amount": Decimal("5.00"),
                "paid_on": _today(),
                "reference": f"LATE-R-{i}",
            }
            with pytest.raises(OverrideRequested):
                services.record_payment(actor=roles[maker], **pay, override_reason=f"Override {i}")
            approve_override(
                actor=roles[checker],
                override_id=GuardOverride.objects.get(payout=payout).pk,
            )
            services.record_payment(actor=roles[maker], **pay)

    late_rows(N, 0)
    few, r1 = _count(client, reverse("payments_after_offboard"))
    late_rows(2 * N, N)
    many, r3 = _count(client, reverse("payments_after_offboard"))

    assert (len(_exception_rows(r1)), len(_exception_rows(r3))) == (N, 3 * N)
    assert "Override 5" in _text(r3)
    assert few == many, f"payments_after_offboard: {few} queries with N rows, {many} with 3N"
    assert few == 4 + PERMISSIONS_QUERY
