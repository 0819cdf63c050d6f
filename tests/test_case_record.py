"""The verifiable case record: the hash chain on every event, the *Export record* ZIP (case
page and partner page) and `verify_case_records`.

Tampering is done as someone with database access would: raw SQL with the append-only
trigger switched off, so only the chain can tell. Every test here needs PostgreSQL (the
trigger, jsonb as it gives data back).
"""

import csv
import datetime as dt
import hashlib
import io
import json
import zipfile
from decimal import Decimal

import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse
from django.utils import timezone

from offboarding import services
from offboarding.case_chain import GENESIS, evidence_storage, verify_case
from offboarding.demo import drive, request_data, step_data
from offboarding.models import CaseEvent, EventKind, EvidenceFile
from tests.factories import CaseFactory, PartnerFactory, PayoutFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

REQUEST_PDF = b"%PDF-1.4 the partner's request\n" + bytes(range(256)) * 40
NOTICE_PDF = b"%PDF-1.4 the 30-day notice"
HOSTILE_NAME = '=SUM(1+1)*cmd|"x".txt'
# What README's "Case records" section says an event's hash covers.
SEALED_KEYS = (
    "v",
    "case",
    "position",
    "previous_hash",
    "kind",
    "step_number",
    "from_state",
    "to_state",
    "actor",
    "created_at",
    "due_at",
    "data",
    "note",
    "evidence",
)


def _done_case(roles):
    """A beta-portal case with money on the table, driven through the services to Done, with
    evidence on step 1 (two files) and step 2 (one), a note, payments and a statement."""
    partner = PartnerFactory(cam=roles["cam"], beta=True)
    PayoutFactory(partner=partner, amount=Decimal("250.00"))
    PayoutFactory(partner=partner, amount=Decimal("99.99"), currency="EUR")
    case = services.open_case(
        actor=roles["cam"],
        partner_id=partner.pk,
        data=request_data(company=True, received_on=timezone.localdate() - dt.timedelta(days=1)),
        note="Revenue review, Q3.",
        evidence=[
            SimpleUploadedFile("request.pdf", REQUEST_PDF, "application/pdf"),
            SimpleUploadedFile(HOSTILE_NAME, b"a name a spreadsheet would run", "text/plain"),
        ],
    )
    case = services.complete_step(
        actor=roles["cam"],
        case_id=case.pk,
        step_number=2,
        expected_state=case.state,
        data=step_data(case),
        note="Notice sent by courier.",
        evidence=[SimpleUploadedFile("notice.pdf", NOTICE_PDF, "application/pdf")],
    )
    case = drive(case, until="done", actors=roles)
    assert case.state == "done"
    assert case.events.filter(kind=EventKind.PAYMENT_RECORDED).count() == 2
    return case


def _export(client, user, case):
    client.force_login(user)
    response = client.get(reverse("case_record_export", args=[case.pk]))
    assert response.status_code == 200, response.status_code
    assert response["Content-Type"] == "application/zip"
    assert f'filename="case-{case.pk}-record.zip"' in response["Content-Disposition"]
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert archive.testzip() is None
    return archive


def _manifest(archive, folder=""):
    return json.loads(archive.read(folder + "manifest.json"))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _raw_sql(sql, params=()):
    """Run SQL on offboarding_caseevent behind the application's back: trigger off, on again
    (the test's transaction rolls everything back afterwards anyway)."""
    with connection.cursor() as cursor:
        # ALTER TABLE waits for no deferred foreign-key check: run them now.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("ALTER TABLE offboarding_caseevent DISABLE TRIGGER caseevent_append_only")
        cursor.execute(sql, params)
        cursor.execute("ALTER TABLE offboarding_caseevent ENABLE TRIGGER caseevent_append_only")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")


def _verify_command(*args):
    """(exit status, output) of verify_case_records."""
    out = io.StringIO()
    try:
        call_command("verify_case_records", *args, stdout=out, no_color=True)
    except CommandError as error:
        return error.returncode, out.getvalue() + str(error)
    return 0, out.getvalue()


# ---- the export of a done case ----


def test_the_export_of_a_done_case_is_a_zip_whose_hashes_verify(client, roles):
    case = _done_case(roles)
    events = list(CaseEvent.objects.filter(case=case).order_by("pk"))

    archive = _export(client, roles["manager"], case)

    names = set(archive.namelist())
    for name in (
        "manifest.json",
        "SHA256SUMS",
        "history.json",
        "history.csv",
        "record.html",
        "statement.csv",
    ):
        assert name in names, name
    manifest = _manifest(archive)
    # Every file but the manifest is listed with its size and SHA-256, and they match.
    listed = {entry["path"]: entry for entry in manifest["files"]}
    assert set(listed) == names - {"manifest.json", "SHA256SUMS"}
    for path, entry in listed.items():
        content = archive.read(path)
        assert (len(content), _sha256(content)) == (entry["size"], entry["sha256"]), path
    sums = dict(
        reversed(line.split("  ", 1)) for line in archive.read("SHA256SUMS").decode().splitlines()
    )
    assert set(sums) == names - {"SHA256SUMS"}
    assert all(_sha256(archive.read(path)) == digest for path, digest in sums.items())
    # The chain verifies, and the manifest says so.
    assert manifest["chain"] == {
        "intact": True,
        "events": len(events),
        "head_hash": events[-1].hash,
        "evidence_bytes_checked": True,
        "first_broken": None,
        "hash_rule": manifest["chain"]["hash_rule"],
    }
    assert manifest["statement"] == {"included": True, "path": "statement.csv"}
    assert manifest["case"]["id"] == case.pk and manifest["exported_by"] == "manager"

    # history.json: every event, and anyone can recompute its hash and its link.
    history = json.loads(archive.read("history.json"))
    assert [event["id"] for event in history["events"]] == [event.pk for event in events]
    previous = GENESIS
    for position, event in enumerate(history["events"], start=1):
        content = {key: event[key] for key in SEALED_KEYS}
        canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        assert _sha256(canonical.encode()) == event["hash"]
        assert (event["position"], event["previous_hash"]) == (position, previous)
        previous = event["hash"]
    step_1 = next(event for event in history["events"] if event["step_number"] == 1)
    assert step_1["actor_username"] == "cam" and step_1["note"] == "Revenue review, Q3."
    assert step_1["data"]["initiated_by"] == "company"
    assert (step_1["from_state"], step_1["to_state"]) == ("step_1", "step_2")
    assert [item["name"] for item in step_1["evidence"]] == ["request.pdf", HOSTILE_NAME]
    # The evidence: as uploaded, its digest recorded with the event, no path outside its folder.
    request_pdf = next(item for item in step_1["files"] if item["name"] == "request.pdf")
    assert archive.read(request_pdf["path"]) == REQUEST_PDF
    assert step_1["evidence"][0]["sha256"] == _sha256(REQUEST_PDF) == request_pdf["sha256"]
    evidence_paths = [path for path in names if path.startswith("evidence/")]
    assert len(evidence_paths) == 3
    assert all(".." not in path.split("/") and path.count("/") == 2 for path in evidence_paths)
    hostile = next(item for item in step_1["files"] if item["name"] == HOSTILE_NAME)
    assert hostile["path"].endswith("-=SUM(1+1)_cmd__x_.txt")
    step_2 = next(event for event in history["events"] if event["step_number"] == 2)
    assert archive.read(step_2["files"][0]["path"]) == NOTICE_PDF

    # history.csv: a row per event, formulas neutralised.
    rows = list(csv.reader(io.StringIO(archive.read("history.csv").decode())))
    assert rows[0][:3] == ["event_id", "position", "created_at"]
    assert [int(row[0]) for row in rows[1:]] == [event.pk for event in events]
    csv_step_1 = next(row for row in rows[1:] if row[4] == "1")
    assert csv_step_1[9] == "cam" and csv_step_1[14] == "Revenue review, Q3."
    assert json.loads(csv_step_1[13])["reason"] == "revenue_minimum"
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)

    # The statement and the printable record.
    statement = list(csv.reader(io.StringIO(archive.read("statement.csv").decode())))
    assert statement[0][:2] == ["partner", case.partner.display_name]
    assert {row[1] for row in statement if row[0] == "TOTAL"} == {"EUR", "USD"}
    record = archive.read("record.html").decode()
    assert "<!doctype html>" in record and case.partner.display_name in record
    assert "The hash chain is intact" in record and events[-1].hash in record
    assert "Notice sent by courier." in record and "Total USD" in record

    status, output = _verify_command()
    assert status == 0
    assert "1 case record(s) verified" in output and "every chain is intact" in output


def test_the_case_and_partner_pages_offer_the_export(client, roles):
    case = CaseFactory(actors=roles, state="step_4")
    client.force_login(roles["cam"])
    url = reverse("case_record_export", args=[case.pk])
    assert f'href="{url}"' in client.get(reverse("case_detail", args=[case.pk])).content.decode()
    partner_url = reverse("partner_records_export", args=[case.partner_id])
    page = client.get(reverse("partner_detail", args=[case.partner_id])).content.decode()
    assert f'href="{partner_url}"' in page
    # A download: GET only, nothing changes.
    assert client.post(url).status_code == 405
    assert client.post(partner_url).status_code == 405


# ---- tampering ----


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE offboarding_caseevent SET note = 'Nothing was paid.' WHERE id = %s",
        'UPDATE offboarding_caseevent SET data = data || \'{"amount": "1.00"}\' WHERE id = %s',
        "UPDATE offboarding_caseevent SET created_at = created_at - interval '1 day' WHERE id = %s",
    ],
    ids=["note", "data", "time"],
)
def test_a_tampered_event_is_named_by_case_and_event(client, roles, sql):
    case = _done_case(roles)
    other = CaseFactory(actors=roles, state="step_5")
    payment = case.events.filter(kind=EventKind.PAYMENT_RECORDED).order_by("pk").first()
    assert _verify_command()[0] == 0

    _raw_sql(sql, [payment.pk])

    status, output = _verify_command()
    assert status == 1
    assert f"case {case.pk}: event {payment.pk} (position {payment.position}): content altered" in (
        output
    )
    assert f"case {other.pk}:" not in output
    assert "1 of 2 case record(s) broken" in output
    assert _verify_command("--case", str(other.pk))[0] == 0
    manifest = _manifest(_export(client, roles["manager"], case))
    assert manifest["chain"]["intact"] is False
    assert manifest["chain"]["first_broken"]["event_id"] == payment.pk
    assert manifest["chain"]["first_broken"]["reason"] == "content altered"
    record = _export(client, roles["manager"], case).read("record.html").decode()
    assert f"The hash chain is broken at event {payment.pk}" in record


def test_an_event_deleted_in_the_middle_is_detected(client, roles):
    case = _done_case(roles)
    events = list(case.events.order_by("pk"))
    payment = next(e for e in events if e.kind == EventKind.PAYMENT_RECORDED)
    after = events[events.index(payment) + 1]

    _raw_sql("DELETE FROM offboarding_caseevent WHERE id = %s", [payment.pk])

    status, output = _verify_command("--case", str(case.pk))
    assert status == 1
    assert f"case {case.pk}: event {after.pk} (position {after.position}): link broken" in output
    assert f"position {payment.position} after event {events[events.index(payment) - 1].pk}" in (
        output
    )
    broken = _manifest(_export(client, roles["manager"], case))["chain"]["first_broken"]
    assert (broken["event_id"], broken["position"], broken["reason"]) == (
        after.pk,
        after.position,
        "link broken",
    )
    assert "deleted" in broken["detail"]


def test_reordered_events_are_detected(roles):
    case = _done_case(roles)
    first, second = case.events.filter(kind=EventKind.PAYMENT_RECORDED).order_by("pk")
    assert second.position == first.position + 1
    # Swap the two rows' ids: the history now reads the later payment first.
    parked = second.pk + 10**9
    for new, old in ((parked, first.pk), (first.pk, second.pk), (second.pk, parked)):
        _raw_sql("UPDATE offboarding_caseevent SET id = %s WHERE id = %s", [new, old])

    status, output = _verify_command()
    assert status == 1
    assert f"case {case.pk}: event {first.pk} (position {second.position}): link broken" in output


def test_a_rewritten_position_and_a_cut_short_history_are_detected(roles):
    case = _done_case(roles)
    events = list(case.events.order_by("pk"))
    _raw_sql("UPDATE offboarding_caseevent SET position = 100 WHERE id = %s", [events[3].pk])
    assert f"event {events[3].pk} (position 100): content altered" in _verify_command()[1]

    other = _done_case(roles)
    last = other.events.order_by("pk").last()
    assert last.to_state == "done"
    _raw_sql("DELETE FROM offboarding_caseevent WHERE id = %s", [last.pk])

    status, output = _verify_command("--case", str(other.pk))
    assert status == 1
    assert f"case {other.pk}: event " in output and "history cut short" in output


def test_altered_evidence_bytes_are_detected(client, roles):
    case = _done_case(roles)
    evidence = EvidenceFile.objects.filter(event__case=case, original_name="notice.pdf").get()
    storage = evidence_storage()
    storage.delete(evidence.file.name)
    assert storage.save(evidence.file.name, ContentFile(b"%PDF-1.4 a forged notice")) == (
        evidence.file.name
    )

    status, output = _verify_command()
    assert status == 1
    assert f"case {case.pk}: event {evidence.event_id}" in output
    assert "evidence altered" in output and "notice.pdf" in output
    assert _verify_command("--no-files")[0] == 0  # the rows still match the event
    manifest = _manifest(_export(client, roles["manager"], case))
    assert manifest["chain"]["first_broken"]["event_id"] == evidence.event_id
    assert manifest["chain"]["first_broken"]["reason"] == "evidence altered"


def test_the_database_still_refuses_changes_and_a_second_event_at_a_position(roles):
    case = CaseFactory(actors=roles, state="step_4")
    event = case.events.order_by("pk").last()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        CaseEvent.objects.filter(pk=event.pk).update(hash="0" * 64)
    with (
        pytest.raises(DatabaseError, match="caseevent_one_event_per_position"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "INSERT INTO offboarding_caseevent (case_id, kind, from_state, to_state, "
            "actor_id, created_at, data, note, position, evidence_digests, previous_hash, "
            "hash) SELECT case_id, kind, from_state, to_state, actor_id, created_at, data, "
            "note, position, evidence_digests, previous_hash, hash "
            "FROM offboarding_caseevent WHERE id = %s",
            [event.pk],
        )


def test_every_event_written_by_the_services_is_chained(roles):
    case = _done_case(roles)
    withdrawn = CaseFactory(actors=roles, state="withdrawn")
    for each in (case, withdrawn):
        events = list(each.events.order_by("pk"))
        assert [e.position for e in events] == list(range(1, len(events) + 1))
        assert [e.previous_hash for e in events] == [GENESIS] + [e.hash for e in events[:-1]]
        result = verify_case(each.pk, each.state)
        assert result.intact and result.events == len(events)
    assert _verify_command("--case", "999999999") == (1, "There is no case 999999999.")


# ---- who gets what ----


def test_a_user_who_cannot_see_the_case_gets_a_404(client, roles):
    case = CaseFactory(actors=roles, state="step_4")
    for username in ("cam2", "nobody"):
        client.force_login(roles[username])
        assert client.get(reverse("case_record_export", args=[case.pk])).status_code == 404
        url = reverse("partner_records_export", args=[case.partner_id])
        assert client.get(url).status_code == 404
    client.force_login(roles["manager"])
    for bad in ("abc", "99999999999999999999", str(case.pk + 1000)):
        assert client.get(f"/cases/{bad}/record.zip").status_code == 404
        assert client.get(f"/partners/{bad}/case-records.zip").status_code == 404


def test_a_cam_without_money_permission_gets_the_record_without_the_statement(client, roles):
    case = _done_case(roles)
    assert not roles["cam"].has_perm("payouts.view_payout")

    archive = _export(client, roles["cam"], case)

    assert "statement.csv" not in archive.namelist()
    manifest = _manifest(archive)
    assert manifest["statement"]["included"] is False
    assert "money statement" in manifest["statement"]["reason"]
    assert manifest["chain"]["intact"] is True
    assert "statement.csv" not in {entry["path"] for entry in manifest["files"]}
    record = archive.read("record.html").decode()
    assert "Left out: the money statement" in record and "Total USD" not in record


def test_the_partner_export_holds_a_folder_per_case(client, roles):
    partner = PartnerFactory(cam=roles["cam"])
    withdrawn = CaseFactory(actors=roles, partner=partner, state="withdrawn")
    partner.refresh_from_db()
    done = CaseFactory(actors=roles, partner=partner, state="done")
    client.force_login(roles["car"])

    response = client.get(reverse("partner_records_export", args=[partner.pk]))

    assert response.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    top = json.loads(archive.read("manifest.json"))
    assert top["partner"]["id"] == partner.pk
    assert [(c["id"], c["folder"]) for c in top["cases"]] == [
        (withdrawn.pk, f"case-{withdrawn.pk}/"),
        (done.pk, f"case-{done.pk}/"),
    ]
    for summary in top["cases"]:
        folder = summary["folder"]
        assert summary["chain"]["intact"] is True
        assert _sha256(archive.read(folder + "manifest.json")) == summary["manifest_sha256"]
        for entry in _manifest(archive, folder)["files"]:
            assert _sha256(archive.read(folder + entry["path"])) == entry["sha256"]
        assert folder + "statement.csv" in archive.namelist()  # CAR reads money


# ---- the backfill of the events recorded before the chain ----


@pytest.mark.django_db(transaction=True)
def test_the_migration_seals_the_events_recorded_before_it(roles):
    case = CaseFactory(actors=roles, state="step_5")
    before, chained = (
        ("offboarding", "0005_open_case_and_car_queue_indexes"),
        (
            "offboarding",
            "0006_case_event_hash_chain",
        ),
    )
    executor = MigrationExecutor(connection)
    executor.migrate([before])
    old = executor.loader.project_state([before]).apps
    OldEvent = old.get_model("offboarding", "CaseEvent")
    OldEvidence = old.get_model("offboarding", "EvidenceFile")
    legacy = OldEvent.objects.create(
        case_id=case.pk,
        kind="ledger_changed",
        from_state="step_5",
        to_state="step_5",
        actor_id=roles["salesops"].pk,
        data={"note": "recorded before the chain", "count": 2.0},
        note="legacy",
    )
    name = evidence_storage().save("evidence/legacy/receipt.pdf", ContentFile(b"%PDF legacy"))
    OldEvidence.objects.create(event_id=legacy.pk, file=name, original_name="receipt.pdf", size=11)

    executor = MigrationExecutor(connection)
    executor.migrate([chained])

    events = list(CaseEvent.objects.filter(case=case).order_by("pk"))
    assert [e.position for e in events] == list(range(1, len(events) + 1))
    assert events[-1].pk == legacy.pk
    assert events[-1].evidence_digests == [
        {"name": "receipt.pdf", "size": 11, "sha256": _sha256(b"%PDF legacy")}
    ]
    assert verify_case(case.pk, case.state).intact
    # The trigger is back on after the backfill.
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        CaseEvent.objects.filter(pk=legacy.pk).update(note="rewritten")
