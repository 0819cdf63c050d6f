"""Evidence files as stored, against what the database recorded of them.

Each event stores the name, size and SHA-256 of the files recorded with it
(`CaseEvent.evidence_digests`, read before its row existed: offboarding/case_chain.py); the
`EvidenceFile` rows of the event follow that list in order. Events sealed before digests were
kept (migration offboarding/0006) have none: for their files only the size can be compared.
"""

from collections.abc import Iterator
from dataclasses import dataclass

from offboarding.case_chain import CHUNK, evidence_storage, stream_sha256
from offboarding.models import CaseEvent, EvidenceFile

MISSING = "missing"
ALTERED = "altered"
SIZE_DIFFERS = "size differs"


@dataclass(frozen=True, slots=True)
class EvidenceProblem:
    evidence_id: int
    case_id: int
    event_id: int
    name: str  # the storage name
    problem: str  # MISSING, ALTERED or SIZE_DIFFERS
    detail: str

    def describe(self) -> str:
        return (
            f"evidence file {self.evidence_id} (case {self.case_id}, event {self.event_id}, "
            f"{self.name}): {self.problem} — {self.detail}"
        )


@dataclass(slots=True)
class EvidenceReport:
    checked: int = 0
    with_digest: int = 0
    problems: list[EvidenceProblem] | None = None

    def __post_init__(self):
        self.problems = []


def _recorded_digests(event_ids) -> dict[int, list]:
    rows = CaseEvent.objects.filter(pk__in=event_ids).values_list("pk", "evidence_digests")
    return {pk: digests or [] for pk, digests in rows}


def _stored(storage, name: str) -> tuple[int, str] | None:
    """(size, SHA-256) of a stored file, or None if the storage cannot open it."""
    try:
        with storage.open(name, "rb") as stored:
            size = 0

            def chunks() -> Iterator[bytes]:
                nonlocal size
                for chunk in iter(lambda: stored.read(CHUNK), b""):
                    size += len(chunk)
                    yield chunk

            digest = stream_sha256(chunks())
            return size, digest
    except OSError:
        return None


def check_evidence(case_id: int | None = None, batch: int = 500) -> EvidenceReport:
    """Read every evidence file (or one case's) and compare it with what was recorded."""
    storage = evidence_storage()
    report = EvidenceReport()
    rows = EvidenceFile.objects.order_by("event_id", "pk").values_list(
        "pk", "event_id", "event__case_id", "file", "size"
    )
    if case_id is not None:
        rows = rows.filter(event__case_id=case_id)
    pending: list[tuple] = []

    def flush():
        digests = _recorded_digests({row[1] for row in pending})
        by_event: dict[int, list[tuple]] = {}
        for row in pending:
            by_event.setdefault(row[1], []).append(row)
        for event_id, files in by_event.items():
            recorded = digests.get(event_id, [])
            # The event's list follows its files in order; a list of another length was not
            # written with these rows (verify_case_records names that), so only sizes count.
            paired = recorded if len(recorded) == len(files) else [None] * len(files)
            for (pk, _, case, name, size), digest in zip(files, paired, strict=True):
                _check_one(storage, report, pk, event_id, case, name, size, digest)
        pending.clear()

    # Rows arrive ordered by event, so an event's files always share a batch.
    last_event = None
    for row in rows.iterator(batch):
        if len(pending) >= batch and row[1] != last_event:
            flush()
        pending.append(row)
        last_event = row[1]
    if pending:
        flush()
    return report


def _check_one(storage, report, pk, event_id, case_id, name, size, digest) -> None:
    report.checked += 1
    expected_sha = digest.get("sha256") if isinstance(digest, dict) else None
    if expected_sha:
        report.with_digest += 1
    found = _stored(storage, name)

    def problem(kind, detail):
        report.problems.append(EvidenceProblem(pk, case_id, event_id, name, kind, detail))

    if found is None:
        problem(MISSING, "the storage has no such file")
    elif expected_sha and found[1] != expected_sha:
        problem(
            ALTERED,
            f"SHA-256 {found[1]} ({found[0]} bytes), recorded {expected_sha} ({size} bytes)",
        )
    elif found[0] != size:
        problem(SIZE_DIFFERS, f"{found[0]} bytes stored, {size} recorded (no digest recorded)")
