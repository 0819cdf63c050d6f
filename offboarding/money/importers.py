"""Importing commissions, open orders and payouts from CSV (the partner portal's or the
accounting system's export).

Columns (a header row is required; extra columns are ignored):

- commissions: partner_record_id, source, reference, period_start, period_end, earned_on,
  amount, currency
- orders: partner_record_id, reference, ordered_on, amount, currency
- payouts: partner_record_id, reference, description, earned_on, amount, currency, status
  (open or pending; blank means open)

Dates are YYYY-MM-DD; amounts are plain decimals with at most two places (1234.50).
Every row is checked first; one bad row rejects the whole file and nothing is written,
with a report of each rejected row and why. A row whose reference already exists with
the same values is skipped, so importing the same file twice changes nothing.
"""

import csv
import datetime as dt
import io
from dataclasses import dataclass, field
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from partners.models import Partner
from payouts.models import Commission, Order, Payout, PayoutStatus
from payouts.money import checked_amount, to_money, validate_currency

from . import guard

MAX_ROWS = 100_000
MAX_AMOUNT = Decimal("1000000000000")  # 14 digits with 2 decimal places
MAX_LENGTHS = {"reference": 80, "source": 40, "description": 200, "partner_record_id": 40}
LOOKUP_BATCH = 1000  # references per query when looking for rows already stored

COLUMNS = {
    "commissions": (
        "partner_record_id",
        "source",
        "reference",
        "period_start",
        "period_end",
        "earned_on",
        "amount",
        "currency",
    ),
    "orders": ("partner_record_id", "reference", "ordered_on", "amount", "currency"),
    "payouts": (
        "partner_record_id",
        "reference",
        "description",
        "earned_on",
        "amount",
        "currency",
        "status",
    ),
}
MODELS = {"commissions": Commission, "orders": Order, "payouts": Payout}
COMPARED = {
    "commissions": ("partner_id", "period_start", "period_end", "earned_on", "amount", "currency"),
    "orders": ("partner_id", "ordered_on", "amount", "currency"),
    "payouts": ("partner_id", "description", "earned_on", "amount", "currency"),
}


class ImportRejected(Exception):
    def __init__(self, report):
        super().__init__(f"{len(report.errors)} row(s) rejected; nothing was imported.")
        self.report = report


@dataclass
class ImportReport:
    kind: str
    rows: int = 0
    created: int = 0
    unchanged: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)

    def summary(self) -> str:
        if self.errors:
            return (
                f"Rejected: {len(self.errors)} of {self.rows} row(s) have errors; nothing imported."
            )
        return f"Imported {self.created} new {self.kind}; {self.unchanged} already present."


def _date(value: str, column: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        raise ValidationError(f"{column} {value!r} is not a date (YYYY-MM-DD).") from None


def _amount(value: str):
    text = value.strip()
    if not text:
        raise ValidationError("amount is empty.")
    if any(char in text.lower() for char in "e,"):
        raise ValidationError(f"amount {value!r} must be a plain decimal such as 1234.50.")
    amount = to_money(text)
    if amount <= 0:
        raise ValidationError(f"amount {value} must be positive.")
    if amount >= MAX_AMOUNT:
        raise ValidationError(f"amount {value} is larger than the ledger holds.")
    return amount


def _text(row, column: str, *, required: bool = False, default: str = "") -> str:
    value = (row.get(column) or "").strip()
    if required and not value:
        raise ValidationError(f"{column} is empty.")
    limit = MAX_LENGTHS[column]
    if len(value) > limit:
        raise ValidationError(f"{column} is {len(value)} characters; at most {limit}.")
    return value or default


def _currency(value: str) -> str:
    code = value.strip()
    validate_currency(code)
    return code


def _parse_row(kind, row, partners) -> dict:
    record_id = _text(row, "partner_record_id")
    partner = partners.get(record_id)
    if partner is None:
        raise ValidationError(f"no partner with record id {record_id!r}.")
    reference = _text(row, "reference", required=True)
    values = {
        "partner": partner,
        "partner_id": partner.pk,
        "reference": reference,
        "amount": _amount(row.get("amount") or ""),
        "currency": _currency(row.get("currency") or ""),
    }
    # The currency's minor unit (no fraction of a yen), as every ledger service checks.
    checked_amount(values["amount"], values["currency"])
    if kind == "commissions":
        values["source"] = _text(row, "source", default="import")
        values["period_start"] = _date(row.get("period_start") or "", "period_start")
        values["period_end"] = _date(row.get("period_end") or "", "period_end")
        values["earned_on"] = _date(row.get("earned_on") or "", "earned_on")
        if values["period_end"] < values["period_start"]:
            raise ValidationError("period_end is before period_start.")
        on = values["earned_on"]
    elif kind == "orders":
        values["ordered_on"] = _date(row.get("ordered_on") or "", "ordered_on")
        on = values["ordered_on"]
    else:
        values["description"] = _text(row, "description", default="Imported payout")
        values["earned_on"] = _date(row.get("earned_on") or "", "earned_on")
        status = (row.get("status") or "open").strip().lower()
        if status not in (PayoutStatus.OPEN, PayoutStatus.PENDING):
            raise ValidationError(f"status {status!r} must be open or pending.")
        values["status"] = status
        on = values["earned_on"]
    try:
        # Accrual is blocked once the partner has left, whatever date the line carries.
        guard.check(partner, on=max(on, timezone.localdate()), what=kind[:-1])
    except guard.GuardRefused as refusal:
        raise ValidationError(str(refusal)) from None
    return values


def _rows_in_batches(queryset, field: str, values):
    """The rows of `queryset` whose `field` is one of `values`: one query per LOOKUP_BATCH
    values (a file can name 100,000; SQLite takes at most 32,766 parameters a query)."""
    values = sorted(values)
    for start in range(0, len(values), LOOKUP_BATCH):
        yield from queryset.filter(**{f"{field}__in": values[start : start + LOOKUP_BATCH]})


def _existing(kind, parsed) -> dict:
    """The stored rows the file's rows name, by (source, reference)."""
    references = {values["reference"] for _, values in parsed}
    return {
        (getattr(row, "source", None), row.reference): row
        for row in _rows_in_batches(MODELS[kind].objects.all(), "reference", references)
    }


def import_csv(kind: str, content: bytes | str) -> ImportReport:
    """Validate every row, then write all of them or none. Raises ImportRejected."""
    if kind not in COLUMNS:
        raise ValueError(f"Unknown kind {kind!r}; use one of {', '.join(COLUMNS)}.")
    report = ImportReport(kind)
    if isinstance(content, bytes):
        try:
            content = content.decode("utf-8-sig")
        except UnicodeDecodeError:
            report.errors.append((0, "the file is not UTF-8 text."))
            raise ImportRejected(report) from None
    if "\x00" in content:
        line = content.count("\n", 0, content.index("\x00")) + 1
        report.errors.append((line, "the file holds a NUL character; it is not a text CSV."))
        raise ImportRejected(report)
    # newline="": the csv module's own reading of line ends (\r\n, \n, or \r alone, as old
    # Mac exports write them), and line breaks inside quoted values kept as they are.
    reader = csv.DictReader(io.StringIO(content, newline=""))
    try:
        fieldnames = reader.fieldnames or []
        # Each row is reported by its line in the file (for a quoted value spanning lines,
        # the line it ends on), so blank lines do not shift the numbers.
        rows = [(reader.line_num, row) for row in reader] if fieldnames else []
    except csv.Error as error:
        # The line the csv module was reading (the DictReader counts only finished rows).
        line = reader.reader.line_num
        report.errors.append((line, f"the file cannot be read as CSV: {error}."))
        raise ImportRejected(report) from None
    missing = [c for c in COLUMNS[kind] if c not in fieldnames and c != "status"]
    if missing:
        report.errors.append((1, f"header lacks column(s): {', '.join(missing)}."))
        raise ImportRejected(report)
    report.rows = len(rows)
    if report.rows > MAX_ROWS:
        report.errors.append((0, f"{report.rows} rows; at most {MAX_ROWS} per file."))
        raise ImportRejected(report)
    record_ids = {(row.get("partner_record_id") or "").strip() for _, row in rows}
    partners = {
        p.record_id: p
        for p in _rows_in_batches(
            guard.with_offboard_dates(Partner.objects.all()), "record_id", record_ids
        )
    }
    parsed, seen = [], {}
    for line, row in rows:
        try:
            values = _parse_row(kind, row, partners)
        except ValidationError as error:
            report.errors.append((line, " ".join(error.messages)))
            continue
        key = (values.get("source"), values["reference"])
        if key in seen:
            report.errors.append(
                (line, f"reference {values['reference']} repeats line {seen[key]}.")
            )
            continue
        seen[key] = line
        parsed.append((line, values))
    to_create = []
    stored = _existing(kind, parsed)
    for line, values in parsed:
        existing = stored.get((values.get("source"), values["reference"]))
        if existing is None:
            to_create.append(values)
        elif all(getattr(existing, name) == values[name] for name in COMPARED[kind]):
            report.unchanged += 1
        else:
            report.errors.append(
                (line, f"reference {values['reference']} already exists with other values.")
            )
    if report.errors:
        report.errors.sort()
        raise ImportRejected(report)
    model = MODELS[kind]
    with transaction.atomic():
        model.objects.bulk_create(
            [
                model(**{k: v for k, v in values.items() if k != "partner_id"})
                for values in to_create
            ],
            batch_size=1000,
        )
    report.created = len(to_create)
    return report
