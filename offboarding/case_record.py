"""The case record export: one ZIP a person can keep, read, print and verify.

A case's ZIP (`case_record_zip`) holds:

- `manifest.json`: the case, who exported it and when, the chain verification
  (`case_chain.ChainVerifier`: intact, or the first broken link with its event id and why;
  the head hash), the hash rule, whether the money statement is included (and why not), and
  every other file's path, size and SHA-256;
- `SHA256SUMS`: the same digests (manifest.json's too) for `sha256sum -c SHA256SUMS`;
- `history.json`: the case's facts and every event, oldest first: the sealed content
  (`case_chain.SEALED_KEYS`: kind, step, from/to state, actor, time, due, entered data, note,
  evidence recorded, position, previous hash) with its hash, and for reading the actor's
  name, the step's title, whether it was late and the evidence files in the ZIP;
- `history.csv`: a row per event (the data as JSON), written through `core.safe_csv`;
- `record.html`: the printable record (templates/offboarding/case_record.html);
- money: for a user who may not read it (`access.can_read_money`) payment and ledger
  events keep their place, actor, time and hash but not their data, steps 7 and 9 lose the
  balance and statement stored with them (`selectors.withhold_money`); the manifest's
  `redacted` lists those events and says that their hashes cannot be recomputed from the
  file (the chain is verified before anything is withheld);
- `statement.csv`: the final money statement (`payouts.statement_csv`), only for a user who
  may read money (`access.can_read_money`); for anyone else the manifest says it is left out;
- `evidence/<event id>/<file id>-<name>`: every evidence file as stored. Each is hashed while
  it is copied, and those digests are checked against the ones the event recorded.

A partner's ZIP (`partner_records_zip`) holds one such folder per case the user may see,
`case-<id>/`, and a `manifest.json` at the top listing each case with its chain result and
the SHA-256 of its folder's manifest.

Events are read once, as a stream; evidence files are copied in chunks, never held whole. The
ZIP is written to a temporary file that the response streams and then closes.
"""

import datetime as dt
import hashlib
import io
import json
import shutil
import tempfile
import zipfile
from contextlib import contextmanager

from django.template.loader import render_to_string
from django.utils import timezone

from core.safe_csv import SafeWriter
from payouts.selectors import final_statement
from payouts.statement_csv import statement_csv_rows

from . import access, case_chain
from .models import CaseEvent, EventKind, stored_name
from .process import STEP_BY_NUMBER
from .selectors import MONEY_WITHHELD, person_name, withhold_money
from .templatetags.case_events import field_label, field_value, state_label

CASE_FORMAT = "partnerops-case-record/1"
PARTNER_FORMAT = "partnerops-partner-records/1"
KIND_LABELS = dict(EventKind.choices)
NO_STATEMENT = (
    "Left out: the money statement is for users who may read payouts (CAR and partner-ops "
    "managers)."
)
# For a user who may not read money (issue 15) the payment and ledger events stay in the
# record, with who and when, their hash and their place in the chain, but without their
# data; steps 7 and 9 lose the balance and statement stored with them. The chain is verified
# here on the full events before anything is withheld, so the manifest's result holds;
# a reader of the ZIP can recompute the hash of every other event, not of those.
REDACTED = (
    "Withheld: the money in these events (payments, ledger changes, the balance at step 7 "
    "and the statement at step 9) is for users who may read payouts (CAR and partner-ops "
    "managers). Their hashes cannot be recomputed from this file; every other event's can, "
    "and the chain was verified on the full events when the record was exported."
)
CSV_HEADER = (
    "event_id",
    "position",
    "created_at",
    "kind",
    "step_number",
    "step_title",
    "from_state",
    "to_state",
    "actor_id",
    "actor_username",
    "actor_name",
    "due_at",
    "late",
    "data",
    "note",
    "evidence",
    "previous_hash",
    "hash",
)


def case_filename(case) -> str:
    return f"case-{case.pk}-record.zip"


def partner_filename(partner) -> str:
    return f"partner-{partner.pk}-case-records.zip"


def case_record_zip(case, user):
    """The ZIP of one case's record, as an open temporary file positioned at its start."""
    now = timezone.now()
    return _zip(lambda zf: _write_case(_Archive(zf), case, user, now))


def partner_records_zip(partner, cases, user):
    """One folder per case of `cases` (those of `partner` that `user` may see)."""
    now = timezone.now()

    def write(zf):
        summaries = [_write_case(_Archive(zf, f"case-{c.pk}/"), c, user, now) for c in cases]
        with _Archive(zf).text("manifest.json") as out:
            json.dump(
                {
                    "format": PARTNER_FORMAT,
                    "partner": _partner_facts(partner),
                    "exported_at": case_chain.instant(now),
                    "exported_by": user.get_username(),
                    "cases": summaries,
                },
                out,
                indent=2,
                ensure_ascii=False,
            )

    return _zip(write)


# ---- the ZIP ----


def _zip(write):
    # Returned open: the response streams it and closes it (closed here if writing fails).
    target = tempfile.TemporaryFile()  # noqa: SIM115
    try:
        with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            write(zf)
        target.seek(0)
    except BaseException:
        target.close()
        raise
    return target


class _Member(io.RawIOBase):
    """A file being written into the ZIP, hashed and counted on the way in."""

    def __init__(self, stream):
        super().__init__()
        self._stream = stream
        self._sha = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        view = memoryview(data)
        self._sha.update(view)
        self._stream.write(view)
        self.size += view.nbytes
        return view.nbytes

    def close(self) -> None:
        if not self.closed:
            self._stream.close()
        super().close()

    def hexdigest(self) -> str:
        return self._sha.hexdigest()


class _Archive:
    """The files of one case's folder in the ZIP, each listed with its size and SHA-256."""

    def __init__(self, zf, prefix=""):
        self.zf, self.prefix = zf, prefix
        self.files: list[dict] = []

    @contextmanager
    def binary(self, path):
        with _Member(self.zf.open(self.prefix + path, "w")) as member:
            yield member
        self.files.append({"path": path, "size": member.size, "sha256": member.hexdigest()})

    @contextmanager
    def text(self, path):
        with self.binary(path) as member:
            buffered = io.BufferedWriter(member, buffer_size=case_chain.CHUNK)
            out = io.TextIOWrapper(buffered, encoding="utf-8", newline="")
            yield out
            out.flush()
            out.detach()
            buffered.flush()
            buffered.detach()


# ---- one case ----


def _write_case(archive: _Archive, case, user, now) -> dict:
    money = access.can_read_money(user)
    evidence = case_chain.evidence_rows(case.pk)
    files = _copy_evidence(archive, evidence)

    def file_sha256(row):
        return files[row.pk]["sha256"]

    verifier = case_chain.ChainVerifier(case.pk, case.state, evidence, file_sha256)
    events = []
    stream = CaseEvent.objects.filter(case=case).select_related("actor").order_by("pk")
    for event in stream.iterator(500):
        verifier.feed(event)
        events.append(_event_entry(event, evidence.get(event.pk, ()), files, money))
    chain = verifier.finish()
    redacted = [entry["id"] for entry in events if entry.get("data_withheld")]
    facts = _case_facts(case)

    with archive.text("history.json") as out:
        json.dump(
            {
                "format": CASE_FORMAT,
                "case": facts,
                "hash_rule": case_chain.HASH_RULE,
                "events": events,
            },
            out,
            indent=2,
            ensure_ascii=False,
        )
    with archive.text("history.csv") as out:
        writer = SafeWriter(out)
        writer.writerow(CSV_HEADER)
        writer.writerows(_csv_row(entry) for entry in events)
    statement = final_statement(case) if money else None
    if statement is not None:
        with archive.text("statement.csv") as out:
            SafeWriter(out).writerows(statement_csv_rows(case, statement))
    html = render_to_string(
        "offboarding/case_record.html",
        {
            "case": case,
            "facts": facts,
            "events": [_html_event(entry) for entry in events],
            "chain": chain,
            "statement": statement,
            "statement_left_out": NO_STATEMENT if statement is None else "",
            "money_withheld": MONEY_WITHHELD if redacted else "",
            "exported_at": now,
            "exported_by": user,
            "hash_rule": case_chain.HASH_RULE,
        },
    )
    with archive.text("record.html") as out:
        out.write(html)

    manifest = {
        "format": CASE_FORMAT,
        "case": facts,
        "exported_at": case_chain.instant(now),
        "exported_by": user.get_username(),
        "chain": {**chain.as_dict(), "hash_rule": case_chain.HASH_RULE},
        "statement": {"included": True, "path": "statement.csv"}
        if statement is not None
        else {"included": False, "reason": NO_STATEMENT},
        "redacted": {"events": redacted, "reason": REDACTED} if redacted else None,
        "files": list(archive.files),
    }
    with archive.text("manifest.json") as out:
        json.dump(manifest, out, indent=2, ensure_ascii=False)
    manifest_sha256 = archive.files[-1]["sha256"]
    with archive.text("SHA256SUMS") as out:
        out.writelines(f"{entry['sha256']}  {entry['path']}\n" for entry in archive.files)
    return {
        "id": case.pk,
        "folder": archive.prefix,
        "state": case.state,
        "chain": chain.as_dict(),
        "manifest_sha256": manifest_sha256,
    }


def _copy_evidence(archive: _Archive, evidence) -> dict[int, dict]:
    """Copy every evidence file into the ZIP; its path there and the SHA-256 of its bytes
    (both None for a file the storage cannot open), by evidence id."""
    storage = case_chain.evidence_storage()
    files = {}
    for rows in evidence.values():
        for row in rows:
            path = f"evidence/{row.event_id}/{row.pk}-{_file_name(row.name)}"
            try:
                stored = storage.open(row.file, "rb")
            except OSError:
                files[row.pk] = {"path": None, "sha256": None}
                continue
            with stored, archive.binary(path) as member:
                shutil.copyfileobj(stored, member, case_chain.CHUNK)
            files[row.pk] = {"path": path, "sha256": archive.files[-1]["sha256"]}
    return files


def _file_name(name: str) -> str:
    """An evidence file's name as a plain file name: no folders, nothing a file system or
    `sha256sum -c` would choke on."""
    cleaned = "".join(
        "_" if char in '/\\:*?"<>|' or not char.isprintable() else char for char in name
    ).strip(" .")
    return stored_name(cleaned or "file")


def _iso_date(value):
    return value.isoformat() if value else None


def _partner_facts(partner) -> dict:
    return {
        "id": partner.pk,
        "display_name": partner.display_name,
        "legal_name": partner.legal_name,
        "record_id": partner.record_id,
    }


def _case_facts(case) -> dict:
    return {
        "id": case.pk,
        "partner": _partner_facts(case.partner),
        "cam": case.partner.cam.get_username() if case.partner.cam_id else None,
        "state": case.state,
        "state_label": str(case.get_state_display()),
        "opened_by": case.opened_by.get_username(),
        "opened_at": case_chain.instant(case.opened_at),
        "closed_at": case_chain.instant(case.closed_at),
        "initiated_by": case.initiated_by,
        "reason": case.reason,
        "reason_detail": case.reason_detail,
        "request_received_on": _iso_date(case.request_received_on),
        "request_channel": case.request_channel,
        "legal_action": case.legal_action,
        "notice_date": _iso_date(case.notice_date),
        "requested_exit_date": _iso_date(case.requested_exit_date),
        "offboard_date": _iso_date(case.offboard_date),
        "money_on_table": case.money_on_table,
        "portal": case.portal,
        "withdrawal_reason": case.withdrawal_reason,
    }


def _event_entry(event, rows, files, money: bool) -> dict:
    actor = event.actor
    step = STEP_BY_NUMBER.get(event.step_number) if event.step_number else None
    sealed = case_chain.sealed_content(event)
    withheld = []
    if not money:
        sealed["data"], withheld = withhold_money(event.kind, sealed["data"])
    return {
        "id": event.pk,
        **sealed,
        **({"data_withheld": withheld} if withheld else {}),
        "hash": event.hash,
        "kind_label": str(KIND_LABELS.get(event.kind, event.kind)),
        "step_title": step.title if step else "",
        "actor_username": actor.get_username(),
        "actor_name": person_name(actor.username, actor.first_name, actor.last_name),
        "late": event.was_late,
        "files": [
            {
                "id": row.pk,
                "name": row.name,
                "size": row.size,
                "sha256": files[row.pk]["sha256"],
                "path": files[row.pk]["path"],
            }
            for row in rows
        ],
    }


def _csv_row(entry) -> list:
    return [
        entry["id"],
        entry["position"],
        entry["created_at"],
        entry["kind"],
        entry["step_number"],
        entry["step_title"],
        entry["from_state"],
        entry["to_state"],
        entry["actor"],
        entry["actor_username"],
        entry["actor_name"],
        entry["due_at"],
        entry["late"],
        json.dumps(entry["data"], ensure_ascii=False, sort_keys=True),
        entry["note"],
        "; ".join(f"{item['name']} (sha256 {item['sha256']})" for item in entry["files"]),
        entry["previous_hash"],
        entry["hash"],
    ]


def _moment(iso: str | None):
    return dt.datetime.fromisoformat(iso) if iso else None


def _html_event(entry) -> dict:
    """What the printable record shows of an event: labels and local times."""
    data = entry["data"]
    items = (
        [(field_label(key), field_value(value, key)) for key, value in data.items()]
        if isinstance(data, dict)
        else [("Data", data)]
    )
    return {
        "entry": entry,
        "heading": f"Step {entry['step_number']} · {entry['step_title']}"
        if entry["step_title"]
        else entry["kind_label"],
        "created_at": _moment(entry["created_at"]),
        "due_at": _moment(entry["due_at"]),
        "from_label": state_label(entry["from_state"]) if entry["from_state"] else "",
        "to_label": state_label(entry["to_state"]) if entry["to_state"] else "",
        "items": [(label, "—" if value in ("", None) else value) for label, value in items],
        "money_withheld": bool(entry.get("data_withheld")),
    }
