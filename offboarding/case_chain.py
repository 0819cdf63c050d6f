"""The hash chain that makes a case's history tamper-evident.

Every event is sealed once, when its row is inserted (`CaseEvent.save` calls `seal`):

- `position`: its place in the case's history, 1, 2, 3, … (unique per case in the database);
- `previous_hash`: the `hash` of the case's event before it (`GENESIS` for the first);
- `hash`: the SHA-256 of the canonical JSON (`canonical_json`) of `sealed_content(event)`:
  the version, case id, position, previous_hash, kind, step number, from/to state, actor id,
  created_at and due_at (ISO 8601 in UTC, to the microsecond), the entered data, the note and
  `evidence_digests`.

Evidence: `record_event` has the uploads in hand before the event row exists, so it reads
them first (`upload_digests`) and the event stores each file's name, size and SHA-256 in
`evidence_digests` — inside the hash. The `EvidenceFile` rows, created just after the event
in the same transaction, must then match that list (name and size, in order), and the stored
bytes its digests. A file attached to an event any other way is not in the event's list and
is reported as altered evidence.

`verify_case` (and `ChainVerifier`, which the export feeds while it writes) walks a case's
events in insertion order (by id) and names the first broken link:

- "content altered": the stored hash is not the hash of the row's content (a field changed);
- "link broken": the position or previous_hash does not follow from the event before it
  (an event was deleted, inserted or moved);
- "evidence altered": the evidence rows or stored files do not match what the event recorded;
- "history cut short": the last event does not lead to the case's current state (the latest
  events were deleted), or a case has no history at all;
- "not sealed": the event has no hash.

What a chain alone cannot show: someone who can write to the database and recomputes every
hash from the altered event to the last. Against that, keep exports: each manifest names the
head hash (the last event's), and a later chain must still contain it at the same position.

Callers of `seal` hold a lock on the case row (every writer in `offboarding.services` and
`offboarding.money.services` does), so "the event before" is well defined; the unique
position per case refuses a second event at the same place should a caller ever forget.
"""

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import NamedTuple

from django.utils import timezone

GENESIS = "0" * 64
VERSION = 1
CHUNK = 1 << 16

CONTENT_ALTERED = "content altered"
LINK_BROKEN = "link broken"
EVIDENCE_ALTERED = "evidence altered"
CUT_SHORT = "history cut short"
NOT_SEALED = "not sealed"

# The keys of an event in history.json that its hash covers, as `sealed_content` names them.
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
HASH_RULE = (
    "hash = SHA-256 of the JSON of the event's keys "
    + ", ".join(SEALED_KEYS)
    + " (keys sorted, no spaces, ASCII escapes, integral numbers written as integers);"
    " previous_hash is the hash of the event before it, " + GENESIS + " for the first."
)


# ---- the hash ----


def _plain(value):
    """`value` as JSON reads it back (string keys, lists), integral floats as integers: the
    same whether it was just built in Python or read from PostgreSQL's jsonb, which writes
    1e20 as 100000000000000000000."""
    return _numbers(json.loads(json.dumps(value)))


def _numbers(value):
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_numbers(item) for item in value]
    return value


def instant(value: dt.datetime | None) -> str | None:
    """A moment as ISO 8601 in UTC to the microsecond, as the database gives it back."""
    if value is None:
        return None
    if timezone.is_naive(value):
        value = timezone.make_aware(value)  # what saving it does (USE_TZ)
    return value.astimezone(dt.UTC).isoformat(timespec="microseconds")


def sealed_content(event) -> dict:
    """What an event's hash covers (a CaseEvent, or a historical model in a migration)."""
    return {
        "v": VERSION,
        "case": event.case_id,
        "position": event.position,
        "previous_hash": event.previous_hash,
        "kind": str(event.kind),
        "step_number": event.step_number,
        "from_state": str(event.from_state),
        "to_state": str(event.to_state),
        "actor": event.actor_id,
        "created_at": instant(event.created_at),
        "due_at": instant(event.due_at),
        "data": _plain(event.data),
        "note": event.note,
        "evidence": _plain(event.evidence_digests or []),
    }


def canonical_json(content: Mapping) -> bytes:
    return json.dumps(
        content, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    ).encode("ascii")


def content_hash(content: Mapping) -> str:
    return hashlib.sha256(canonical_json(content)).hexdigest()


def event_hash(event) -> str:
    return content_hash(sealed_content(event))


def seal(event) -> None:
    """Give an event about to be inserted its position, previous_hash and hash."""
    last = (
        type(event)
        ._default_manager.filter(case_id=event.case_id)
        .order_by("-position")
        .values_list("position", "hash")
        .first()
    )
    event.position, event.previous_hash = (last[0] + 1, last[1]) if last else (1, GENESIS)
    event.evidence_digests = _plain(event.evidence_digests or [])
    event.hash = event_hash(event)


# ---- evidence ----


def stream_sha256(chunks: Iterable[bytes]) -> str:
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk)
    return digest.hexdigest()


def upload_digests(files: Iterable) -> list[dict]:
    """Name, size and SHA-256 of each upload, as `services._attach_evidence` will store it."""
    return [
        {"name": upload.name[:255], "size": upload.size, "sha256": stream_sha256(upload.chunks())}
        for upload in files
    ]


def stored_sha256(storage, name: str) -> str | None:
    """The SHA-256 of a stored file's bytes; None if the storage cannot open it."""
    try:
        with storage.open(name, "rb") as stored:
            return stream_sha256(iter(lambda: stored.read(CHUNK), b""))
    except OSError:
        return None


class EvidenceRow(NamedTuple):
    pk: int
    event_id: int
    name: str
    size: int
    file: str


def evidence_rows(case_id) -> dict[int, list[EvidenceRow]]:
    """The case's evidence files (their rows, not their bytes) by event, oldest first."""
    from .models import EvidenceFile

    found: dict[int, list[EvidenceRow]] = {}
    rows = (
        EvidenceFile.objects.filter(event__case_id=case_id)
        .order_by("event_id", "pk")
        .values_list("pk", "event_id", "original_name", "size", "file")
    )
    for row in rows:
        found.setdefault(row[1], []).append(EvidenceRow(*row))
    return found


def evidence_storage():
    from .models import EvidenceFile

    return EvidenceFile._meta.get_field("file").storage


# ---- verification ----


@dataclass(frozen=True, slots=True)
class Break:
    """The first broken link of a case's chain."""

    event_id: int | None
    position: int | None
    reason: str  # CONTENT_ALTERED, LINK_BROKEN, EVIDENCE_ALTERED, CUT_SHORT, NOT_SEALED
    detail: str

    def describe(self) -> str:
        where = f"event {self.event_id}" if self.event_id is not None else "no event"
        if self.position is not None:
            where += f" (position {self.position})"
        return f"{where}: {self.reason} — {self.detail}"


@dataclass(slots=True)
class ChainResult:
    case_id: int
    events: int = 0
    head_hash: str = GENESIS  # the hash of the last event that verified
    broken: Break | None = None
    files_checked: bool = False

    @property
    def intact(self) -> bool:
        return self.broken is None

    def as_dict(self) -> dict:
        return {
            "intact": self.intact,
            "events": self.events,
            "head_hash": self.head_hash,
            "evidence_bytes_checked": self.files_checked,
            "first_broken": asdict(self.broken) if self.broken else None,
        }


class ChainVerifier:
    """Checks a case's events, fed one by one in insertion order (by id).

    `file_sha256(row)` gives the SHA-256 of an evidence file's bytes (None if missing); without
    it the evidence rows are checked against the event but the bytes are not read.
    """

    def __init__(
        self,
        case_id,
        case_state: str,
        evidence: Mapping[int, list[EvidenceRow]],
        file_sha256: Callable[[EvidenceRow], str | None] | None = None,
    ):
        self.result = ChainResult(case_id, files_checked=file_sha256 is not None)
        self._state = str(case_state)
        self._evidence = evidence
        self._file_sha256 = file_sha256
        self._last = None  # (event id, position, to_state) of the last event that verified

    def feed(self, event) -> None:
        result = self.result
        result.events += 1
        if result.broken is None:
            result.broken = self._check(event)
            if result.broken is None:
                result.head_hash = event.hash
                self._last = (event.pk, event.position, str(event.to_state))

    def finish(self) -> ChainResult:
        result = self.result
        if result.broken is None:
            if self._last is None:
                result.broken = Break(None, None, CUT_SHORT, "the case has no history")
            elif self._last[2] != self._state:
                event_id, position, to_state = self._last
                result.broken = Break(
                    event_id,
                    position,
                    CUT_SHORT,
                    f"the last event leads to {to_state or 'nothing'} but the case is "
                    f"{self._state}: later events are missing",
                )
        return result

    def _check(self, event) -> Break | None:
        position = event.position
        if not event.hash or position is None:
            return Break(event.pk, position, NOT_SEALED, "the event has no hash")
        if event_hash(event) != event.hash:
            return Break(
                event.pk,
                position,
                CONTENT_ALTERED,
                "its stored hash is not the hash of its content: a field was changed",
            )
        expected_position = (self._last[1] + 1) if self._last else 1
        expected_previous = self.result.head_hash if self._last else GENESIS
        if position != expected_position or event.previous_hash != expected_previous:
            before = f"event {self._last[0]}" if self._last else "the start of the history"
            if position > expected_position:
                detail = (
                    f"position {expected_position}"
                    + (f"–{position - 1}" if position - 1 > expected_position else "")
                    + f" after {before} is missing: an event was deleted or moved"
                )
            elif position != expected_position:
                detail = f"it should be at position {expected_position}, after {before}: moved"
            else:
                detail = (
                    f"its previous_hash is not the hash of {before}: an event was removed, "
                    "inserted or rewritten"
                )
            return Break(event.pk, position, LINK_BROKEN, detail)
        return self._check_evidence(event)

    def _check_evidence(self, event) -> Break | None:
        recorded = event.evidence_digests or []
        rows = self._evidence.get(event.pk, [])
        expected = [(d.get("name"), d.get("size")) for d in recorded if isinstance(d, dict)]
        if [(row.name, row.size) for row in rows] != expected or len(expected) != len(recorded):
            return Break(
                event.pk,
                event.position,
                EVIDENCE_ALTERED,
                f"{len(rows)} evidence file(s) on record, {len(recorded)} recorded with the "
                "event, or their names or sizes differ",
            )
        if self._file_sha256 is not None:
            for row, digest in zip(rows, recorded, strict=True):
                if self._file_sha256(row) != digest.get("sha256"):
                    return Break(
                        event.pk,
                        event.position,
                        EVIDENCE_ALTERED,
                        f"the stored bytes of evidence file {row.pk} ({row.name}) are not the "
                        "ones recorded with the event",
                    )
        return None


def verify_case(case_id, case_state: str, *, check_files: bool = True) -> ChainResult:
    """Verify one case's chain, reading its events as a stream."""
    from .models import CaseEvent

    file_sha256 = None
    if check_files:
        storage = evidence_storage()

        def file_sha256(row):
            return stored_sha256(storage, row.file)

    verifier = ChainVerifier(case_id, case_state, evidence_rows(case_id), file_sha256)
    for event in CaseEvent.objects.filter(case_id=case_id).order_by("pk").iterator(500):
        verifier.feed(event)
    return verifier.finish()


def recorded_digest(evidence) -> str | None:
    """The SHA-256 the event stored for `evidence` when it was attached, if it stored one
    (the event's list follows its files in order; events sealed before it have none)."""
    recorded = evidence.event.evidence_digests or []
    siblings = list(
        type(evidence)
        .objects.filter(event_id=evidence.event_id)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    if len(siblings) != len(recorded):
        return None
    entry = recorded[siblings.index(evidence.pk)]
    return entry.get("sha256") if isinstance(entry, dict) else None
