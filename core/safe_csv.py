"""Every CSV the app writes goes through here, so none of them can run a formula.

A spreadsheet treats a cell that starts with =, +, -, @, a tab or a carriage return as a
formula (CSV injection, OWASP). Such a text cell is written with a leading apostrophe,
which spreadsheets show as text and do not evaluate. Numbers (Decimal, int) and dates are
written as they are: a negative amount is data, not a formula.
"""

import csv
import datetime as dt
import io
from collections.abc import Iterable
from decimal import Decimal

from django.http import HttpResponse

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value) -> object:
    """`value` as a CSV cell that a spreadsheet will not evaluate."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | Decimal | dt.date | dt.datetime):
        return value
    text = str(value)
    if text.startswith(FORMULA_PREFIXES):
        return "'" + text
    return text


def safe_row(row: Iterable) -> list:
    return [safe_cell(value) for value in row]


class SafeWriter:
    """csv.writer whose rows are neutralised cell by cell."""

    def __init__(self, stream):
        self._writer = csv.writer(stream)

    def writerow(self, row: Iterable) -> None:
        self._writer.writerow(safe_row(row))

    def writerows(self, rows: Iterable[Iterable]) -> None:
        for row in rows:
            self.writerow(row)


def csv_text(rows: Iterable[Iterable]) -> str:
    """The rows as CSV text (for a file inside an export)."""
    buffer = io.StringIO()
    SafeWriter(buffer).writerows(rows)
    return buffer.getvalue()


def csv_response(filename: str) -> tuple[HttpResponse, SafeWriter]:
    """An attachment response named `filename` and a safe writer onto it."""
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response, SafeWriter(response)
