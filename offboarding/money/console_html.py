"""The CAR console's lists (and the report of payments to offboarded partners) as HTML.

Up to 25 rows a list, each of which cost about 150 template calls through a template loop
(most of the console's time). As in case_table_html.py, the rows are written with string
operations; every value is escaped as format_html escapes it, and the balances arrive as
HTML already (offboarding.money.console._balance_html)."""

from html import escape

from django.utils.html import conditional_escape
from django.utils.safestring import SafeString, mark_safe

_OVERDUE_ROW = ' class="table-danger"'
_OVERDUE_BADGE = ' <span class="badge text-bg-danger">Overdue</span>'
_YOU_PAID = (
    '<span class="badge text-bg-warning">You recorded payments: another CAR member must'
    " verify</span>"
)
_YOU_CAN_VERIFY = '<span class="badge text-bg-success">You can verify</span>'


def _e(value) -> str:
    """`value` as format_html writes it: escaped, unless it is HTML already."""
    return escape(value) if type(value) is str else str(conditional_escape(value))


def waiting_rows_html(rows) -> SafeString:
    """A <tr> for each case waiting on a money step (car_console()["rows"])."""
    return mark_safe(  # noqa: S308 - every value is escaped
        "".join(
            f"<tr{_OVERDUE_ROW if row['overdue'] else ''}>"
            f'<td><a href="{_e(row["url"])}">#{_e(row["pk"])}</a></td>'
            f"<td>{_e(row['partner'])}</td><td>{_e(row['step'])}</td>"
            f"<td>{_e(row['balance_html'])}</td>"
            f"<td>{_e(row['due'])}{_OVERDUE_BADGE if row['overdue'] else ''}</td>"
            f"<td>{_e(row['offboard'])}</td></tr>\n"
            for row in rows
        )
    )


def verification_items_html(queue) -> SafeString:
    """An <li> for each case at step 9 (car_console()["verification_queue"])."""
    return mark_safe(  # noqa: S308 - every value is escaped
        "".join(
            '<li class="list-group-item d-flex justify-content-between flex-wrap"><span>'
            f'<a href="{_e(row["url"])}">#{_e(row["pk"])} {_e(row["partner"])}</a> · '
            f'<a href="{_e(row["statement_url"])}">statement</a></span>'
            f"<span>{_YOU_PAID if row['you_paid'] else _YOU_CAN_VERIFY}</span></li>\n"
            for row in queue
        )
    )


def exception_rows_html(rows) -> SafeString:
    """A <tr> for each payment dated after its partner's offboard date."""
    return mark_safe(  # noqa: S308 - every value is escaped
        "".join(
            f"<tr><td>{_e(row['partner'])}</td><td>{_e(row['offboard_date'])}</td>"
            f'<td>{_e(row["paid_on"])}</td><td class="text-end">{_e(row["amount"])}</td>'
            f"<td>{_e(row['reference'])}</td><td>{_e(row['recorded_by'])}</td>"
            f"<td>{_e(row['override'])}</td></tr>\n"
            for row in rows
        )
    )
