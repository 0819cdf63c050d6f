"""Backup and restore: the database and the evidence files together, with a manifest.

A backup is one directory:

    manifest.json         what is in it: every other file's path, size and SHA-256, the
                          database's vendor, and a fingerprint (count and SHA-256) of the
                          cases, events, payments and evidence rows
    SHA256SUMS            the same digests and the manifest's: `sha256sum -c SHA256SUMS`
    database.dump         PostgreSQL: `pg_dump --format=custom`
    database.sqlite3      SQLite: a copy made by SQLite's online backup API
    media/<storage name>  each evidence file, as the storage holds it

On PostgreSQL the fingerprint, the list of evidence files and `pg_dump` read one snapshot
(`pg_export_snapshot` in a REPEATABLE READ transaction), so a backup taken while people work
is consistent: the manifest counts exactly what the dump holds. Evidence files are
append-only, so copying them from that snapshot's list is enough.

A restore verifies the whole manifest before it touches anything and refuses a damaged
backup (a file missing, of another size or another digest, a path outside the backup, a
manifest it cannot read), then restores into an empty database only (it never merges), puts
the evidence files back, and compares the restored rows with the fingerprint.
"""

import datetime as dt
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from django.conf import settings
from django.core.files.base import File
from django.core.files.storage import FileSystemStorage
from django.db import connections, transaction

from offboarding.case_chain import CHUNK, evidence_storage

FORMAT = "partnerops-backup"
VERSION = 1
MANIFEST = "manifest.json"
SUMS = "SHA256SUMS"
MEDIA_DIR = "media"
PG_DUMP_FILE = "database.dump"
SQLITE_FILE = "database.sqlite3"

# What a restore must bring back, row for row. Every column is cast to text in SQL, so the
# same query gives the same strings from the live database, a restored one and (on SQLite)
# a copy read with the plain sqlite3 module.
FINGERPRINTS = {
    "cases": ("offboarding_case", ("id", "partner_id", "state")),
    "events": ("offboarding_caseevent", ("id", "case_id", "position", "hash")),
    "payments": (
        "payouts_payment",
        ("id", "payout_id", "amount", "currency", "paid_on", "reference", "recorded_by_id"),
    ),
    "evidence_files": ("offboarding_evidencefile", ("id", "event_id", "file", "size")),
}


class BackupError(Exception):
    """A backup or restore that cannot go ahead; the message says why."""


class BackupDamaged(BackupError):
    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("The backup is damaged; nothing was restored:\n  " + "\n  ".join(problems))


@dataclass
class BackupResult:
    path: Path
    manifest: dict
    missing_evidence: list[str] = field(default_factory=list)


# ---- helpers ----


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fingerprint(cursor) -> dict:
    """Count and SHA-256 of the rows that matter, from a DB-API cursor (Django's or sqlite3's)."""
    found = {}
    for key, (table, columns) in FINGERPRINTS.items():
        select = ", ".join(f"CAST({column} AS TEXT)" for column in columns)
        cursor.execute(f"SELECT {select} FROM {table} ORDER BY id")  # noqa: S608 (fixed names)
        digest = hashlib.sha256()
        count = 0
        for row in cursor.fetchall():
            digest.update(json.dumps(list(row), separators=(",", ":")).encode() + b"\n")
            count += 1
        found[key] = {"count": count, "sha256": digest.hexdigest()}
    return found


def safe_relative(name: str) -> PurePosixPath | None:
    """`name` as a path inside a directory, or None if it could leave it."""
    path = PurePosixPath(name)
    if not name or path.is_absolute() or ".." in path.parts or "\\" in name or "\x00" in name:
        return None
    return path


def _pg_env(db: dict) -> dict:
    env = dict(os.environ)
    for key, variable in (
        ("HOST", "PGHOST"),
        ("PORT", "PGPORT"),
        ("USER", "PGUSER"),
        ("PASSWORD", "PGPASSWORD"),
        ("NAME", "PGDATABASE"),
    ):
        if db.get(key):
            env[variable] = str(db[key])
    sslmode = (db.get("OPTIONS") or {}).get("sslmode")
    if sslmode:
        env["PGSSLMODE"] = sslmode
    return env


def _pg_tool(name: str) -> str:
    bin_dir = getattr(settings, "PG_BIN_DIR", "")
    tool = str(Path(bin_dir) / name) if bin_dir else shutil.which(name)
    if not tool or not Path(tool).exists():
        raise BackupError(
            f"{name} was not found (install the PostgreSQL client, or set "
            "PARTNEROPS_PG_BIN_DIR to the directory that holds it)."
        )
    return tool


def _run(command: list[str], env: dict, what: str) -> None:
    # The argv is a list (no shell): pg_dump / pg_restore from _pg_tool, then fixed flags
    # and paths this module builds; the connection travels in the environment.
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        raise BackupError(f"{what} failed (exit {done.returncode}): {done.stderr.strip()}")


def _manifest_entry(root: Path, relative: str) -> dict:
    path = root / relative
    return {"path": relative, "size": path.stat().st_size, "sha256": file_sha256(path)}


def _copy_evidence(storage, names: Iterable[str], root: Path) -> tuple[list[dict], list[str]]:
    entries, missing = [], []
    for name in names:
        relative = safe_relative(name)
        if relative is None:
            raise BackupError(f"Evidence file name {name!r} is not a path inside the storage.")
        target = root / MEDIA_DIR / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            with storage.open(name, "rb") as source, target.open("wb") as copy:
                shutil.copyfileobj(source, copy, CHUNK)
        except OSError:
            target.unlink(missing_ok=True)
            missing.append(name)
            continue
        entries.append(_manifest_entry(root, f"{MEDIA_DIR}/{relative}"))
    return entries, missing


# ---- backup ----


def default_backup_dir() -> Path:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return settings.VAR_DIR / "backups" / f"partnerops-{stamp}"


def backup(output: Path | None = None, alias: str = "default") -> BackupResult:
    output = Path(output) if output else default_backup_dir()
    if output.exists() and any(output.iterdir()):
        raise BackupError(f"{output} exists and is not empty: choose a new directory.")
    output.mkdir(parents=True, exist_ok=True)
    connection = connections[alias]
    vendor = connection.vendor
    storage = evidence_storage()
    if vendor == "postgresql":
        database_file = PG_DUMP_FILE
        # One snapshot for the dump, the fingerprint and the list of files.
        with transaction.atomic(using=alias), connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            cursor.execute("SELECT pg_export_snapshot()")
            snapshot = cursor.fetchone()[0]
            rows = fingerprint(cursor)
            cursor.execute("SELECT file FROM offboarding_evidencefile ORDER BY id")
            names = [row[0] for row in cursor.fetchall()]
            _run(
                [
                    _pg_tool("pg_dump"),
                    "--format=custom",
                    f"--snapshot={snapshot}",
                    f"--file={output / database_file}",
                ],
                _pg_env(connection.settings_dict),
                "pg_dump",
            )
    elif vendor == "sqlite":
        database_file = SQLITE_FILE
        source_name = connection.settings_dict["NAME"]
        if str(source_name).startswith(":memory:") or "mode=memory" in str(source_name):
            raise BackupError("An in-memory SQLite database has no file to back up.")
        # SQLite's online backup: a consistent copy even while the app writes.
        source = sqlite3.connect(source_name)
        copy = sqlite3.connect(output / database_file)
        try:
            source.backup(copy)
        finally:
            source.close()
        try:
            cursor = copy.cursor()
            rows = fingerprint(cursor)
            cursor.execute("SELECT file FROM offboarding_evidencefile ORDER BY id")
            names = [row[0] for row in cursor.fetchall()]
        finally:
            copy.close()
    else:
        raise BackupError(f"Backups support PostgreSQL and SQLite, not {vendor}.")

    evidence, missing = _copy_evidence(storage, names, output)
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "database": {"vendor": vendor, "file": database_file},
        "rows": rows,
        "files": [_manifest_entry(output, database_file), *evidence],
        "missing_evidence": missing,
    }
    (output / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    sums = [f"{entry['sha256']}  {entry['path']}" for entry in manifest["files"]]
    sums.append(f"{file_sha256(output / MANIFEST)}  {MANIFEST}")
    (output / SUMS).write_text("\n".join(sums) + "\n")
    return BackupResult(output, manifest, missing)


# ---- restore ----


def verify_backup(root: Path) -> dict:
    """The manifest of the backup at `root`, once every file it lists is as it says."""
    root = Path(root)
    if not root.is_dir():
        raise BackupError(f"{root} is not a backup directory.")
    try:
        manifest = json.loads((root / MANIFEST).read_text())
    except FileNotFoundError:
        raise BackupDamaged([f"{MANIFEST} is missing"]) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as problem:
        raise BackupDamaged([f"{MANIFEST} cannot be read: {problem}"]) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupDamaged([f"{MANIFEST} is not a PartnerOps backup manifest"])
    if manifest.get("version") != VERSION:
        raise BackupDamaged([f"manifest version {manifest.get('version')!r}, expected {VERSION}"])
    problems = []
    files = manifest.get("files")
    database = manifest.get("database") or {}
    if not isinstance(files, list) or not isinstance(manifest.get("rows"), dict):
        raise BackupDamaged([f"{MANIFEST} lists no files or no row fingerprint"])
    listed = set()
    for entry in files:
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
            problems.append(f"a malformed entry in the manifest: {entry!r}")
            continue
        relative = safe_relative(entry["path"])
        if relative is None:
            problems.append(f"{entry['path']!r} is not a path inside the backup")
            continue
        listed.add(entry["path"])
        path = root / relative
        if not path.is_file():
            problems.append(f"{entry['path']}: missing")
        elif path.stat().st_size != entry.get("size"):
            problems.append(
                f"{entry['path']}: {path.stat().st_size} bytes, the manifest says "
                f"{entry.get('size')}"
            )
        elif file_sha256(path) != entry.get("sha256"):
            problems.append(f"{entry['path']}: its SHA-256 is not the manifest's")
    if database.get("file") not in listed:
        problems.append("the database file is not listed in the manifest")
    if problems:
        raise BackupDamaged(problems)
    return manifest


def _database_is_empty(alias: str) -> bool:
    connection = connections[alias]
    with connection.cursor() as cursor:
        return not connection.introspection.table_names(cursor)


def restore(
    root: Path,
    alias: str = "default",
    media_root: Path | None = None,
    grant_alias: str | None = None,
) -> dict:
    """Restore the backup at `root` into the (empty) database `alias` and the evidence
    storage (or `media_root`). Returns the restored fingerprint, equal to the manifest's."""
    root = Path(root)
    manifest = verify_backup(root)
    connection = connections[alias]
    vendor = manifest["database"]["vendor"]
    if connection.vendor != vendor:
        raise BackupError(f"This is a {vendor} backup; the target database is {connection.vendor}.")
    if not _database_is_empty(alias):
        raise BackupError(
            f"The target database {connection.settings_dict['NAME']} already has tables: "
            "restore into an empty database (drop and create it first). Nothing was changed."
        )
    storage = FileSystemStorage(location=media_root) if media_root else evidence_storage()
    evidence = [e for e in manifest["files"] if e["path"].startswith(f"{MEDIA_DIR}/")]
    # Before anything is written: every evidence file is absent or already the same bytes.
    to_copy = []
    for entry in evidence:
        name = entry["path"][len(MEDIA_DIR) + 1 :]
        if storage.exists(name):
            with storage.open(name, "rb") as existing:
                digest = hashlib.sha256()
                for chunk in iter(lambda existing=existing: existing.read(CHUNK), b""):
                    digest.update(chunk)
            if digest.hexdigest() != entry["sha256"]:
                raise BackupError(
                    f"The evidence storage already holds another {name}: restore into an "
                    "empty media directory. Nothing was changed."
                )
            continue
        to_copy.append((name, entry))

    database_file = root / manifest["database"]["file"]
    if vendor == "postgresql":
        connection.close()
        _run(
            [
                _pg_tool("pg_restore"),
                "--no-owner",
                "--no-privileges",
                "--exit-on-error",
                "--single-transaction",
                f"--dbname={connection.settings_dict['NAME']}",
                str(database_file),
            ],
            _pg_env(connection.settings_dict),
            "pg_restore",
        )
    else:
        target = connection.settings_dict["NAME"]
        connection.close()
        source = sqlite3.connect(database_file)
        copy = sqlite3.connect(target)
        try:
            source.backup(copy)
        finally:
            source.close()
            copy.close()

    for name, entry in to_copy:
        with (root / entry["path"]).open("rb") as source:
            saved = storage.save(name, File(source, name=name))
        if saved != name:
            storage.delete(saved)
            raise BackupError(f"The storage would not keep the name {name} (it gave {saved}).")

    if grant_alias:
        from .grants import grant_app_role

        grant_app_role(grant_alias)
    with connection.cursor() as cursor:
        restored = fingerprint(cursor)
    if restored != manifest["rows"]:
        differ = [key for key in restored if restored[key] != manifest["rows"].get(key)]
        raise BackupError(
            "The restored rows differ from the backup's fingerprint: " + ", ".join(differ)
        )
    return restored
