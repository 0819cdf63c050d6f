"""Money visible by role, one rule (issue 15): whoever may not read the final statement
(`access.can_read_money`: CAR, partner-ops managers) sees no payment line, payout reference
or amount anywhere — the case page's money panel, its history (the latest events and the
whole history) and the case record's ZIP. Readers still see all of it."""

import csv
import datetime as dt
import hashlib
import html
import io
import json
import re
import zipfile
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from offboarding import access, services
from offboarding.demo import drive, request_data
from offboarding.models import CaseEvent, EventKind
from offboarding.money.services import record_payment, void_payout
from tests.factories import PartnerFactory, PayoutFactory

pytestmark = pytest.mark.django_db

NON_READERS = ("cam", "salesops", "portaladmin")
READERS = ("car", "manager")
PAYMENT_REFERENCE = "WIRE-SECRET-4711"
VOID_REASON = "Duplicate of a paid invoice, VOID-7731"
# The amounts as the page (localized, maybe grouped) or a JSON file would write them.
AMOUNTS = ("4321.09", "4,321.09", "77.13")


@pytest.fixture
def money_case(roles):
    """A case at step 9: one payout paid by CAR with a known reference, one voided, so its
    history holds a payment, a ledger change, step 7's balance and the money steps."""
    partner = PartnerFactory(cam=roles["cam"], beta=True)
    paid = PayoutFactory(partner=partner, amount=Decimal("4321.09"), reference="PO-SECRET-1")
    voided = PayoutFactory(partner=partner, amount=Decimal("77.13"), reference="PO-SECRET-2")
    case = services.open_case(
        actor=roles["cam"],
        partner_id=partner.pk,
        data=request_data(company=True, received_on=timezone.localdate() - dt.timedelta(days=1)),
    )
    case = drive(case, until="step_8", actors=roles)
    void_payout(actor=roles["car"], case_id=case.pk, payout_id=voided.pk, reason=VOID_REASON)
    record_payment(
        actor=roles["car"],
        case_id=case.pk,
        payout_id=paid.pk,
        amount=paid.amount,
        paid_on=timezone.localdate(),
        reference=PAYMENT_REFERENCE,
    )
    case = drive(case, until="step_9", actors=roles)
    assert case.state == "step_9"
    kinds = set(case.events.values_list("kind", flat=True))
    assert {EventKind.PAYMENT_RECORDED, EventKind.LEDGER_CHANGED} <= kinds
    return case


def _secrets(case):
    payouts = [payment.payout.reference for payment in case.payments.all()]
    return (PAYMENT_REFERENCE, VOID_REASON, "PO-SECRET-1", "PO-SECRET-2", *AMOUNTS, *payouts)


def _page(client, case, **params):
    response = client.get(reverse("case_detail", args=[case.pk]), params)
    assert response.status_code == 200
    return response.content.decode()


def test_the_roles_split_as_the_statement_page_does(roles, client, money_case):
    statement = reverse("final_statement", args=[money_case.pk])
    for username in NON_READERS + READERS:
        user = roles[username]
        client.force_login(user)
        reads = username in READERS
        assert access.can_read_money(user) is reads, username
        assert (client.get(statement).status_code == 200) is reads, username


def _history(response):
    """The HTML of each entry of the case page's history, oldest first."""
    body = response.content.decode()
    start = body.index('id="history-heading"')
    return re.findall(r"<li\b[^>]*>(.*?)</li>", body[start : body.index("</section>", start)], re.S)


@pytest.mark.parametrize("username", NON_READERS)
def test_a_non_reader_sees_no_payment_on_the_case_page_or_in_its_history(
    client, roles, money_case, username
):
    client.force_login(roles[username])
    for params in ({}, {"history": "all"}):
        page = _page(client, money_case, **params)
        for secret in _secrets(money_case):
            assert secret not in page, (username, params, secret)
        # The events are still there, with who and when; only their money is withheld.
        assert "— payment" in page
        assert "shown to users who may read payouts" in page
        assert 'id="money-withheld"' in page
        assert "Final statement" not in page

    response = client.get(reverse("case_detail", args=[money_case.pk]))
    page = response.content.decode()
    assert "Payments recorded" not in page and "Open balance" not in page
    payment_rows = [e for e in _history(response) if "— payment" in e]
    assert payment_rows and all(
        "<dl" not in e and "shown to users who may read payouts" in e for e in payment_rows
    )


@pytest.mark.parametrize("username", READERS)
def test_a_reader_still_sees_every_payment_line(client, roles, money_case, username):
    client.force_login(roles[username])
    page = _page(client, money_case, history="all")
    assert PAYMENT_REFERENCE in page  # the payments list and the payment's event
    assert page.count(PAYMENT_REFERENCE) >= 2
    assert VOID_REASON in page and "PO-SECRET-2" in page
    assert "Final statement" in page
    assert 'id="money-withheld"' not in page
    assert "shown to users who may read payouts" not in page


def test_a_step_event_keeps_what_was_decided_without_the_figures(client, roles, money_case):
    client.force_login(roles["cam"])
    response = client.get(reverse("case_detail", args=[money_case.pk]), {"history": "all"})
    step_7 = next(e for e in _history(response) if re.search(r"<strong>Step 7 ·", e))
    labels = [html.unescape(label) for label in re.findall(r"<dt[^>]*>(.*?)</dt>", step_7)]
    # The decision (money on the table) stays; its figures are withheld.
    assert "shown to users who may read payouts" in step_7 and labels
    assert not any("balance" in label.lower() for label in labels)


# ---- the case record's ZIP ----


def _export(client, user, case):
    client.force_login(user)
    response = client.get(reverse("case_record_export", args=[case.pk]))
    assert response.status_code == 200
    return zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _recomputed(event, sealed_keys) -> str:
    content = {key: event[key] for key in sealed_keys}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return _sha256(canonical.encode())


@pytest.mark.postgres  # the hashes are recomputed from jsonb's data, as the chain tests do
@pytest.mark.parametrize("username", NON_READERS)
def test_a_non_readers_export_withholds_the_money_and_says_so(client, roles, money_case, username):
    from offboarding.case_chain import SEALED_KEYS

    archive = _export(client, roles[username], money_case)
    for name in ("history.json", "history.csv", "record.html", "manifest.json"):
        text = archive.read(name).decode()
        for secret in _secrets(money_case):
            assert secret not in text, (username, name, secret)
    assert "statement.csv" not in archive.namelist()

    manifest = json.loads(archive.read("manifest.json"))
    assert manifest["chain"]["intact"] is True  # verified on the full events
    money_events = set(
        CaseEvent.objects.filter(
            case=money_case, kind__in=[EventKind.PAYMENT_RECORDED, EventKind.LEDGER_CHANGED]
        ).values_list("pk", flat=True)
    )
    step_7 = CaseEvent.objects.get(case=money_case, step_number=7, kind=EventKind.STEP_COMPLETED)
    redacted = set(manifest["redacted"]["events"])
    assert money_events | {step_7.pk} <= redacted
    assert "cannot be recomputed" in manifest["redacted"]["reason"]

    history = json.loads(archive.read("history.json"))
    events = {event["id"]: event for event in history["events"]}
    assert set(events) == set(
        CaseEvent.objects.filter(case=money_case).values_list("pk", flat=True)
    )  # every event is in the record, redacted or not
    for event_id, event in events.items():
        if event_id in redacted:
            assert event["data_withheld"]
            assert _recomputed(event, SEALED_KEYS) != event["hash"]
        else:  # anyone can still recompute every other event's hash
            assert "data_withheld" not in event
            assert _recomputed(event, SEALED_KEYS) == event["hash"]
    for event_id in money_events:
        assert events[event_id]["data"] == {}
    assert events[step_7.pk]["data"]["money_on_table"] is True
    assert "open_balance" in events[step_7.pk]["data_withheld"]

    rows = list(csv.reader(io.StringIO(archive.read("history.csv").decode())))
    assert len(rows) == len(events) + 1
    record = archive.read("record.html").decode()
    assert "Money withheld" in record and "cannot be recomputed" in record


@pytest.mark.postgres
@pytest.mark.parametrize("username", READERS)
def test_a_readers_export_holds_every_payment(client, roles, money_case, username):
    from offboarding.case_chain import SEALED_KEYS

    archive = _export(client, roles[username], money_case)
    manifest = json.loads(archive.read("manifest.json"))
    assert manifest["redacted"] is None
    history = json.loads(archive.read("history.json"))
    assert all(_recomputed(e, SEALED_KEYS) == e["hash"] for e in history["events"])
    text = archive.read("history.json").decode()
    assert PAYMENT_REFERENCE in text and VOID_REASON in text and "4321.09" in text
    assert PAYMENT_REFERENCE in archive.read("history.csv").decode()
    assert PAYMENT_REFERENCE in archive.read("record.html").decode()
    assert "Money withheld" not in archive.read("record.html").decode()
