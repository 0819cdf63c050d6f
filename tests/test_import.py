"""Importing commissions, open orders and payouts from CSV: all or nothing per file, a
report of each rejected line and why, and re-importing the same file changes nothing."""

import csv
import datetime as dt
import io
import re
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from offboarding.money.importers import COLUMNS, ImportRejected, import_csv
from partners.models import Partner
from payouts.models import Commission, Order, Payout
from tests.factories import PartnerFactory, UserFactory

pytestmark = pytest.mark.django_db

KINDS = ("commissions", "orders", "payouts")
DATE_COLUMN = {"commissions": "earned_on", "orders": "ordered_on", "payouts": "earned_on"}


def today():
    return timezone.localdate()


@pytest.fixture
def partners():
    return [PartnerFactory(record_id="QB-IMP-1"), PartnerFactory(record_id="QB-IMP-2")]


def good_rows(kind, prefix="R"):
    """Three valid rows of `kind`, for the two partners, in USD and EUR."""
    d = today() - dt.timedelta(days=20)
    rows = []
    for n, (record_id, amount, currency) in enumerate(
        [("QB-IMP-1", "0.10", "USD"), ("QB-IMP-2", "0.20", "EUR"), ("QB-IMP-1", "1234.50", "USD")],
        start=1,
    ):
        row = {
            "partner_record_id": record_id,
            "reference": f"{prefix}-{kind[:3].upper()}-{n}",
            "amount": amount,
            "currency": currency,
        }
        if kind == "commissions":
            row |= {
                "source": "portal",
                "period_start": (d - dt.timedelta(days=30)).isoformat(),
                "period_end": d.isoformat(),
                "earned_on": d.isoformat(),
            }
        elif kind == "orders":
            row |= {"ordered_on": d.isoformat()}
        else:
            row |= {
                "description": f"Commission {n}",
                "earned_on": d.isoformat(),
                "status": "pending" if n == 2 else "open",
            }
        rows.append(row)
    return rows


def to_csv(kind, rows, columns=None):
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns or COLUMNS[kind], extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def counts():
    return (Commission.objects.count(), Order.objects.count(), Payout.objects.count())


def snapshot():
    return (
        list(Commission.objects.order_by("pk").values()),
        list(Order.objects.order_by("pk").values()),
        list(Payout.objects.order_by("pk").values()),
    )


def rejected(kind, content):
    before = snapshot()
    with pytest.raises(ImportRejected) as error:
        import_csv(kind, content)
    assert snapshot() == before, "a rejected file must write nothing"
    return error.value.report


def reason_for(report, line):
    reasons = [message for number, message in report.errors if number == line]
    assert reasons, f"line {line} is not in the report: {report.errors}"
    return " ".join(reasons)


# ---------------------------------------------------------------------------------------
# A good file, and the same file again
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_a_good_file_imports_every_row(partners, kind):
    report = import_csv(kind, to_csv(kind, good_rows(kind)).encode())
    assert (report.rows, report.created, report.unchanged, report.errors) == (3, 3, 0, [])
    model = {"commissions": Commission, "orders": Order, "payouts": Payout}[kind]
    lines = list(model.objects.order_by("reference"))
    assert [(line.reference, line.amount, line.currency) for line in lines] == [
        (f"R-{kind[:3].upper()}-1", Decimal("0.10"), "USD"),
        (f"R-{kind[:3].upper()}-2", Decimal("0.20"), "EUR"),
        (f"R-{kind[:3].upper()}-3", Decimal("1234.50"), "USD"),
    ]
    assert [line.partner.record_id for line in lines] == ["QB-IMP-1", "QB-IMP-2", "QB-IMP-1"]
    assert sum((line.amount for line in lines), Decimal("0")) == Decimal("1234.80")
    if kind == "payouts":
        assert [p.status for p in lines] == ["open", "pending", "open"]
        assert all(p.paid_amount == Decimal("0.00") for p in lines)
    if kind == "commissions":
        assert {c.source for c in lines} == {"portal"} and {c.status for c in lines} == {"open"}
    assert "Imported 3 new" in report.summary()


@pytest.mark.parametrize("kind", KINDS)
def test_importing_the_same_file_again_changes_nothing(partners, kind):
    content = to_csv(kind, good_rows(kind)).encode()
    import_csv(kind, content)
    before = snapshot()
    report = import_csv(kind, content)
    assert (report.rows, report.created, report.unchanged, report.errors) == (3, 0, 3, [])
    assert snapshot() == before
    assert "3 already present" in report.summary()


@pytest.mark.parametrize("kind", KINDS)
def test_a_large_file_is_checked_in_a_few_queries_whatever_its_length(partners, kind):
    """Partners and stored rows are looked up 1,000 at a time, not one query a row."""
    rows = []
    for n in range(2_100):
        row = dict(good_rows(kind)[n % 3])
        row["reference"] = f"BIG-{n:05d}"
        rows.append(row)
    content = to_csv(kind, rows).encode()
    assert import_csv(kind, content).created == 2_100
    with CaptureQueriesContext(connection) as queries:
        report = import_csv(kind, content)
    assert (report.created, report.unchanged, report.errors) == (0, 2_100, [])
    reads = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("SELECT")]
    # One partner query (two record ids) and three of stored rows (2,100 references).
    assert len(reads) == 4


def test_a_file_with_new_and_known_rows_adds_only_the_new_ones(partners):
    rows = good_rows("payouts")
    import_csv("payouts", to_csv("payouts", rows[:2]))
    report = import_csv("payouts", to_csv("payouts", rows))
    assert (report.created, report.unchanged) == (1, 2)
    assert Payout.objects.count() == 3


def test_a_utf8_bom_and_extra_columns_are_accepted(partners):
    rows = [row | {"note": "ignored"} for row in good_rows("orders")]
    content = to_csv("orders", rows, columns=[*COLUMNS["orders"], "note"])
    report = import_csv("orders", "\ufeff".encode() + content.encode())
    assert report.created == 3


# ---------------------------------------------------------------------------------------
# Bad rows: the file is rejected, each bad line reported, nothing written
# ---------------------------------------------------------------------------------------

BAD_VALUES = [
    ("amount", "-5.00", "positive"),
    ("amount", "0.00", "positive"),
    ("amount", "12,50", "plain decimal"),
    ("amount", "abc", "not an amount"),
    ("amount", "1e3", "plain decimal"),
    ("amount", "12.345", "more than two decimal places"),
    ("amount", "", "empty"),
    ("partner_record_id", "QB-NOPE", "no partner with record id 'QB-NOPE'"),
    ("partner_record_id", "", "no partner"),
    ("currency", "US", "not a supported currency"),
    ("currency", "XYZ", "not a supported currency"),
    ("reference", "", "reference is empty"),
    ("date", "2026-02-30", "not a date"),
    ("date", "31/01/2026", "not a date"),
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("column", "value", "reason"), BAD_VALUES)
def test_a_bad_row_rejects_the_file_and_writes_nothing(partners, kind, column, value, reason):
    rows = good_rows(kind)
    column = DATE_COLUMN[kind] if column == "date" else column
    rows[-1][column] = value  # the last row: the good ones before it are not written
    report = rejected(kind, to_csv(kind, rows).encode())
    assert report.errors == [(4, report.errors[0][1])]
    assert re.search(re.escape(reason), reason_for(report, 4))
    assert report.rows == 3
    assert "nothing imported" in report.summary()
    assert counts() == (0, 0, 0)


def test_every_bad_row_is_reported_with_its_line_number_and_reason(partners):
    rows = good_rows("payouts") + good_rows("payouts", prefix="S")
    rows[0]["amount"] = "-1.00"  # line 2
    rows[1]["amount"] = "12,50"  # line 3
    rows[2]["partner_record_id"] = "QB-GHOST"  # line 4
    rows[3]["currency"] = "US"  # line 5
    rows[4]["reference"] = rows[5]["reference"]  # lines 6 and 7 share a reference
    rows.append(good_rows("payouts", prefix="T")[0] | {"earned_on": "yesterday"})  # line 8
    report = rejected("payouts", to_csv("payouts", rows))
    numbers = [line for line, _ in report.errors]
    assert numbers == [2, 3, 4, 5, 7, 8]
    assert "positive" in reason_for(report, 2)
    assert "plain decimal" in reason_for(report, 3)
    assert "QB-GHOST" in reason_for(report, 4)
    assert "currency" in reason_for(report, 5)
    assert "repeats line 6" in reason_for(report, 7)
    assert "not a date" in reason_for(report, 8)
    assert report.summary().startswith("Rejected: 6 of 7 row(s)")
    assert counts() == (0, 0, 0)


@pytest.mark.parametrize("kind", KINDS)
def test_a_reference_repeated_within_the_file_is_rejected(partners, kind):
    rows = good_rows(kind)
    rows.append(dict(rows[0]))  # identical duplicate, last line
    report = rejected(kind, to_csv(kind, rows))
    assert [line for line, _ in report.errors] == [5]
    assert "repeats line 2" in reason_for(report, 5)


def test_the_same_commission_reference_from_two_sources_is_two_commissions(partners):
    rows = good_rows("commissions")
    rows[1]["reference"] = rows[0]["reference"]
    rows[1]["source"] = "accounting"
    assert import_csv("commissions", to_csv("commissions", rows)).created == 3


@pytest.mark.parametrize("kind", KINDS)
def test_a_reference_that_exists_with_other_values_is_rejected(partners, kind):
    import_csv(kind, to_csv(kind, good_rows(kind)))
    rows = good_rows(kind) + good_rows(kind, prefix="NEW")
    rows[2]["amount"] = "1234.51"  # line 4: the stored row says 1234.50
    report = rejected(kind, to_csv(kind, rows))
    assert [line for line, _ in report.errors] == [4]
    assert "already exists with other values" in reason_for(report, 4)
    assert counts().count(3) == 1 and sum(counts()) == 3  # the NEW rows were not written


@pytest.mark.parametrize("kind", KINDS)
def test_a_header_without_a_required_column_is_rejected(partners, kind):
    columns = [c for c in COLUMNS[kind] if c != "amount"]
    report = rejected(kind, to_csv(kind, good_rows(kind), columns=columns))
    assert report.errors == [(1, "header lacks column(s): amount.")]


def test_an_empty_file_is_rejected(partners):
    report = rejected("orders", b"")
    assert report.errors and report.errors[0][0] == 1


@pytest.mark.parametrize("kind", KINDS)
def test_a_file_that_is_not_utf8_is_rejected(partners, kind):
    content = to_csv(kind, good_rows(kind)).replace("Commission 1", "Comisión 1")
    content = content.replace("portal", "portál").encode("latin-1") + b"\xff\xfe\n"
    report = rejected(kind, content)
    assert len(report.errors) == 1
    assert "UTF-8" in report.errors[0][1]


def test_a_payout_status_other_than_open_or_pending_is_rejected(partners):
    rows = good_rows("payouts")
    rows[0]["status"] = "paid"
    report = rejected("payouts", to_csv("payouts", rows))
    assert "must be open or pending" in reason_for(report, 2)


def test_a_commission_period_ending_before_it_starts_is_rejected(partners):
    rows = good_rows("commissions")
    rows[1]["period_start"], rows[1]["period_end"] = rows[1]["period_end"], rows[1]["period_start"]
    report = rejected("commissions", to_csv("commissions", rows))
    assert "period_end is before period_start" in reason_for(report, 3)


@pytest.mark.parametrize(
    ("column", "value"),
    [
        pytest.param("amount", "1000000000000.00", id="amount-15-digits"),
        pytest.param("reference", "R" * 81, id="reference-81-chars"),
    ],
)
@pytest.mark.parametrize("kind", KINDS)
def test_a_value_too_large_for_the_ledger_is_a_rejected_row(partners, kind, column, value):
    """A value the database cannot store (an amount over 14 digits, a reference over 80
    characters) is reported on its line like any other bad value; it neither crashes the
    import nor is it stored truncated."""
    rows = good_rows(kind)
    rows[1][column] = value
    report = rejected(kind, to_csv(kind, rows))
    assert [line for line, _ in report.errors] == [3]


def test_line_numbers_are_the_lines_of_the_file_even_after_a_blank_line(partners):
    """The report's line number is the one CAR sees in the file: a blank line (common at
    the end of exports, sometimes in the middle) does not shift it."""
    rows = good_rows("orders")
    rows[2]["amount"] = "abc"
    header, first, second, third = to_csv("orders", rows).splitlines()
    content = "\n".join([header, first, "", second, third]) + "\n"
    report = rejected("orders", content)
    assert [line for line, _ in report.errors] == [5]


# ---------------------------------------------------------------------------------------
# The payment guard applies to imports
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_a_line_for_an_offboarded_partner_is_rejected(partners, kind):
    Partner.objects.filter(record_id="QB-IMP-2").update(
        offboard_date=today() - dt.timedelta(days=5)
    )
    rows = good_rows(kind)  # line 3 is QB-IMP-2's, dated before its offboard date
    report = rejected(kind, to_csv(kind, rows))
    assert [line for line, _ in report.errors] == [3]
    assert "left the program" in reason_for(report, 3)
    assert counts() == (0, 0, 0)


def test_a_partner_leaving_in_the_future_can_still_be_imported_for(partners):
    Partner.objects.filter(record_id="QB-IMP-2").update(
        offboard_date=today() + dt.timedelta(days=20)
    )
    assert import_csv("payouts", to_csv("payouts", good_rows("payouts"))).created == 3


# ---------------------------------------------------------------------------------------
# The management command
# ---------------------------------------------------------------------------------------


def test_the_command_imports_a_file_and_prints_the_summary(partners, tmp_path, capsys):
    path = tmp_path / "payouts.csv"
    path.write_text(to_csv("payouts", good_rows("payouts")), encoding="utf-8")
    call_command("import_ledger", "payouts", str(path))
    assert "Imported 3 new payouts; 0 already present." in capsys.readouterr().out
    assert Payout.objects.count() == 3
    call_command("import_ledger", "payouts", str(path))
    assert "Imported 0 new payouts; 3 already present." in capsys.readouterr().out
    assert Payout.objects.count() == 3


def test_the_command_rejects_a_bad_file_listing_the_lines(partners, tmp_path, capsys):
    rows = good_rows("commissions")
    rows[0]["currency"] = "XYZ"
    rows[2]["amount"] = "-3.00"
    path = tmp_path / "commissions.csv"
    path.write_text(to_csv("commissions", rows), encoding="utf-8")
    with pytest.raises(CommandError, match=r"Rejected: 2 of 3 row\(s\)"):
        call_command("import_ledger", "commissions", str(path))
    err = capsys.readouterr().err
    assert re.search(r"line 2: .*XYZ", err)
    assert re.search(r"line 4: .*positive", err)
    assert counts() == (0, 0, 0)


def test_the_command_reports_an_unreadable_path(tmp_path):
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("import_ledger", "orders", str(tmp_path / "missing.csv"))
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("import_ledger", "orders", str(tmp_path))  # a directory


def test_the_command_refuses_an_unknown_kind(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("a\n")
    with pytest.raises(CommandError):
        call_command("import_ledger", "refunds", str(path))


# ---------------------------------------------------------------------------------------
# The admin import view
# ---------------------------------------------------------------------------------------

URL = "admin:payouts_ledger_import"


@pytest.fixture
def admin_client_(client):
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(user)
    return client


def upload(kind, content, name="ledger.csv"):
    if isinstance(content, str):
        content = content.encode()
    return {"kind": kind, "file": SimpleUploadedFile(name, content, content_type="text/csv")}


def test_the_admin_import_page_shows_the_form(admin_client_):
    response = admin_client_.get(reverse(URL))
    assert response.status_code == 200
    assert b'type="file"' in response.content
    for column in COLUMNS["commissions"]:
        assert column.encode() in response.content


def test_the_admin_imports_a_good_file(partners, admin_client_):
    response = admin_client_.post(
        reverse(URL), upload("orders", to_csv("orders", good_rows("orders")))
    )
    assert response.status_code == 200
    assert b"Imported 3 new orders" in response.content
    assert Order.objects.count() == 3


def test_the_admin_rejects_a_bad_file_with_the_reasons_and_writes_nothing(partners, admin_client_):
    rows = good_rows("payouts")
    rows[0]["amount"] = "abc"
    rows[2]["partner_record_id"] = "QB-NOPE"
    before = snapshot()
    response = admin_client_.post(reverse(URL), upload("payouts", to_csv("payouts", rows)))
    assert response.status_code == 400
    page = response.content.decode()
    assert "Rejected: 2 of 3 row(s)" in page
    assert re.search(r"<td>2</td>\s*<td>[^<]*not an amount", page)
    assert re.search(r"<td>4</td>\s*<td>[^<]*QB-NOPE", page)
    assert snapshot() == before


def test_the_admin_rejects_a_post_without_a_file(admin_client_):
    response = admin_client_.post(reverse(URL), {"kind": "orders"})
    assert response.status_code == 400
    assert counts() == (0, 0, 0)


def test_a_non_staff_user_cannot_reach_the_import(partners, client):
    client.force_login(UserFactory(username="plain"))
    content = to_csv("orders", good_rows("orders"))
    assert client.get(reverse(URL)).status_code == 302
    response = client.post(reverse(URL), upload("orders", content))
    assert response.status_code == 302
    assert "/login/" in response["Location"]
    assert counts() == (0, 0, 0)


def test_a_staff_user_without_the_permission_gets_403(partners, client):
    user = UserFactory(username="staffer")
    user.is_staff = True
    user.save()
    client.force_login(user)
    assert client.get(reverse(URL)).status_code == 403
    content = to_csv("orders", good_rows("orders"))
    assert client.post(reverse(URL), upload("orders", content)).status_code == 403
    assert counts() == (0, 0, 0)


def test_an_anonymous_user_is_sent_to_log_in(client):
    response = client.get(reverse(URL))
    assert response.status_code == 302 and "/login/" in response["Location"]
