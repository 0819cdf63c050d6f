"""Every CSV the app writes is safe to open in a spreadsheet (partnerops/safe_csv.py)."""

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest

from core.safe_csv import csv_response, csv_text, safe_cell

HOSTILE = [
    '=HYPERLINK("http://example.invalid","x")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(A1:A2)",
    "\t=1+1",
    "\r=1+1",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_a_formula_prefix_is_written_as_text(value):
    assert safe_cell(value) == "'" + value
    (row,) = csv.reader(io.StringIO(csv_text([[value, "plain"]]), newline=""))
    assert row == ["'" + value, "plain"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Acme GmbH", "Acme GmbH"),
        ("a=b", "a=b"),  # only a leading prefix is a formula
        (Decimal("-12.50"), Decimal("-12.50")),  # a number is data, kept as a number
        (3, 3),
        (dt.date(2026, 12, 1), dt.date(2026, 12, 1)),
        (None, ""),
        (True, "yes"),
    ],
)
def test_other_values_are_kept(value, expected):
    assert safe_cell(value) == expected


def test_csv_response_is_an_attachment_with_safe_rows():
    response, writer = csv_response("x.csv")
    writer.writerow(["=1+1", Decimal("5.00")])
    assert response["Content-Disposition"] == 'attachment; filename="x.csv"'
    assert response.content.decode() == "'=1+1,5.00\r\n"
