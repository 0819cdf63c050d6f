"""Backup and restore (issue 15, item 8; ops/backup.py): the database and the evidence files
with a manifest of SHA-256 hashes; a restore verifies the manifest first, refuses a damaged
backup, restores only into an empty database, and brings back every row and file."""

import datetime as dt
import hashlib
import io
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg2
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from offboarding import services
from offboarding.case_chain import evidence_storage
from offboarding.models import CaseEvent, EvidenceFile
from ops import backup as ops_backup
from payouts.models import Payment
from tests.factories import PartnerFactory, PayoutFactory

NOTICE = b"%PDF-1.4 notice for the backup " * 16
ROOT = Path(__file__).resolve().parent.parent


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _hand_made(root, files: dict[str, bytes], **manifest):
    """A backup directory written by hand: the manifest lists `files` as they are."""
    for path, content in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(content)
    body = {
        "format": ops_backup.FORMAT,
        "version": ops_backup.VERSION,
        "database": {"vendor": "postgresql", "file": "database.dump"},
        "rows": {},
        "files": [
            {"path": path, "size": len(content), "sha256": _sha(content)}
            for path, content in files.items()
        ],
        **manifest,
    }
    (root / "manifest.json").write_text(json.dumps(body))
    return root


@pytest.fixture
def made(tmp_path):
    return _hand_made(
        tmp_path / "b", {"database.dump": b"PGDMP dump", "media/evidence/a.pdf": b"%PDF a"}
    )


def test_an_intact_backup_verifies(made):
    manifest = ops_backup.verify_backup(made)
    assert [entry["path"] for entry in manifest["files"]] == [
        "database.dump",
        "media/evidence/a.pdf",
    ]


def test_a_file_changed_to_the_same_size_is_refused(made):
    (made / "media/evidence/a.pdf").write_bytes(b"%PDF b")
    with pytest.raises(ops_backup.BackupDamaged, match="media/evidence/a.pdf: its SHA-256"):
        ops_backup.verify_backup(made)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda root: (root / "database.dump").unlink(), "database.dump: missing"),
        (lambda root: (root / "database.dump").write_bytes(b"PG"), "2 bytes, the manifest says 10"),
        (lambda root: (root / "manifest.json").write_text("{not json"), "cannot be read"),
        (lambda root: (root / "manifest.json").unlink(), "manifest.json is missing"),
        (lambda root: (root / "manifest.json").write_text("[]"), "not a PartnerOps backup"),
    ],
)
def test_damage_is_refused_with_a_message(made, damage, message):
    damage(made)
    with pytest.raises(ops_backup.BackupDamaged, match=message):
        ops_backup.verify_backup(made)


def test_a_path_outside_the_backup_is_refused(tmp_path):
    (tmp_path / "secret").write_bytes(b"x")
    root = _hand_made(tmp_path / "b", {"database.dump": b"PGDMP"})
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["files"].append({"path": "../secret", "size": 1, "sha256": _sha(b"x")})
    (root / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ops_backup.BackupDamaged, match="not a path inside the backup"):
        ops_backup.verify_backup(root)


def test_a_backup_whose_database_file_is_not_listed_is_refused(tmp_path):
    root = _hand_made(tmp_path / "b", {"media/x": b"x"})
    with pytest.raises(ops_backup.BackupDamaged, match="database file is not listed"):
        ops_backup.verify_backup(root)


@pytest.mark.django_db
def test_the_restore_command_refuses_a_damaged_backup_and_changes_nothing(made, tmp_path):
    (made / "database.dump").write_bytes(b"PGDMP tampered")
    media = tmp_path / "media"
    with pytest.raises(CommandError, match="damaged; nothing was restored") as refusal:
        call_command("restore", str(made), media_root=str(media))
    assert "database.dump" in str(refusal.value)
    assert not media.exists()


# ---- a real backup and restore (PostgreSQL: pg_dump and pg_restore) ----


@pytest.fixture
def recorded(roles):
    """A case with an evidence file and a payment, committed (pg_dump reads its own snapshot)."""
    partner = PartnerFactory(cam=roles["cam"])
    case = services.open_case(
        actor=roles["cam"],
        partner_id=partner.pk,
        data={
            "initiated_by": "company",
            "reason": "revenue_minimum",
            "reason_detail": "",
            "request_received_on": timezone.localdate() - dt.timedelta(days=1),
            "request_channel": "internal_review",
        },
        evidence=[SimpleUploadedFile("notice.pdf", NOTICE, "application/pdf")],
    )
    payout = PayoutFactory(partner=partner)
    Payment.objects.create(
        payout=payout,
        case=case,
        amount=payout.amount,
        currency=payout.currency,
        paid_on=timezone.localdate(),
        reference="ACH-BACKUP",
        recorded_by=roles["car"],
    )
    return case


def _pg(dbname):
    db = connection.settings_dict
    conn = psycopg2.connect(
        host=db.get("HOST") or "127.0.0.1",
        port=db.get("PORT") or 5432,
        user=db["USER"],
        password=db.get("PASSWORD") or None,
        dbname=dbname,
    )
    conn.autocommit = True
    return conn


@pytest.fixture
def empty_database():
    """The name of a new empty database on the test server, dropped afterwards."""
    name = f"{connection.settings_dict['NAME']}_restore_{uuid.uuid4().hex[:8]}"
    admin = _pg("postgres")
    try:
        admin.cursor().execute(f'CREATE DATABASE "{name}"')
        yield name
        admin.cursor().execute(f'DROP DATABASE IF EXISTS "{name}"')
    finally:
        admin.close()


def _restore_command(root, dbname, media):
    """`manage.py restore` in its own process, its DATABASE_URL naming `dbname`."""
    db = connection.settings_dict
    url = (
        f"postgres://{db['USER']}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{dbname}"
    )
    return subprocess.run(
        [sys.executable, "manage.py", "restore", str(root), "--media-root", str(media)],
        cwd=ROOT,
        env={
            **os.environ,
            "DATABASE_URL": url,
            "DJANGO_SETTINGS_MODULE": "partnerops.settings.test",
        },
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_backup_and_restore_bring_back_every_event_payment_and_file(
    recorded, empty_database, tmp_path
):
    out = io.StringIO()
    call_command("backup", output=str(tmp_path / "backup"), database="default", stdout=out)
    root = tmp_path / "backup"
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["database"] == {"vendor": "postgresql", "file": "database.dump"}
    assert manifest["rows"]["events"]["count"] == CaseEvent.objects.count()
    assert manifest["rows"]["payments"]["count"] == Payment.objects.count() == 1
    evidence = EvidenceFile.objects.get(event__case=recorded)
    entry = next(e for e in manifest["files"] if e["path"] == f"media/{evidence.file.name}")
    assert entry["sha256"] == evidence.event.evidence_digests[0]["sha256"] == _sha(NOTICE)
    sums = (root / "SHA256SUMS").read_text()
    assert f"{entry['sha256']}  {entry['path']}" in sums
    assert "manifest.json" in sums
    assert "1 payments" in out.getvalue()

    # The live database is not empty: a restore into it is refused before anything happens.
    with pytest.raises(ops_backup.BackupError, match="already has tables"):
        ops_backup.restore(root, "default", media_root=tmp_path / "unused")
    assert not (tmp_path / "unused").exists()

    media = tmp_path / "restored-media"
    result = _restore_command(root, empty_database, media)
    assert result.returncode == 0, result.stderr
    assert "1 payments" in result.stdout and "each equal to the manifest's" in result.stdout
    assert (media / evidence.file.name).read_bytes() == NOTICE
    restored = _pg(empty_database)
    try:
        cursor = restored.cursor()
        assert ops_backup.fingerprint(cursor) == manifest["rows"]
        cursor.execute("SELECT id, hash FROM offboarding_caseevent ORDER BY id")
        assert cursor.fetchall() == list(CaseEvent.objects.order_by("pk").values_list("pk", "hash"))
        cursor.execute("SELECT id, amount, reference FROM payouts_payment ORDER BY id")
        assert cursor.fetchall() == list(
            Payment.objects.order_by("pk").values_list("pk", "amount", "reference")
        )
        # The restored database keeps its guards: the payment trigger came back too.
        cursor.execute(
            "SELECT count(*) FROM pg_trigger WHERE tgname IN "
            "('payment_append_only', 'caseevent_append_only', 'payment_guard')"
        )
        assert cursor.fetchone()[0] == 3
    finally:
        restored.close()
    # A second restore into the same database is refused: it is no longer empty.
    again = _restore_command(root, empty_database, tmp_path / "again")
    assert again.returncode != 0
    assert "already has tables" in again.stderr


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_backup_with_a_missing_evidence_file_says_so_and_exits_1(recorded, tmp_path):
    evidence = EvidenceFile.objects.get(event__case=recorded)
    evidence_storage().delete(evidence.file.name)
    out = io.StringIO()
    with pytest.raises(CommandError, match="1 evidence file"):
        call_command("backup", output=str(tmp_path / "b"), database="default", stdout=out)
    assert f"evidence file missing from storage: {evidence.file.name}" in out.getvalue()
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["missing_evidence"] == [evidence.file.name]
    # What it did write is intact and restorable.
    ops_backup.verify_backup(tmp_path / "b")


@pytest.mark.django_db
def test_a_backup_refuses_a_directory_that_is_not_empty(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "other").write_text("x")
    with pytest.raises(CommandError, match="not empty"):
        call_command("backup", output=str(tmp_path / "b"), database="default")
