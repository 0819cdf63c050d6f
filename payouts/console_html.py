"""The CAR console's lists (and the report of payments to offboarded partners) as HTML.

Up to 25 rows a list, each of which cost about 150 template calls through a template loop
(most of the console's time). Django's format_html_join escapes every value, as the
templates did; the balances arrive as HTML already (payouts.console._balance_html)."""

from django.utils.html import format_html_join
from django.utils.safestring import SafeString, mark_safe

_OVERDUE_ROW = mark_safe(' class="table-danger"')
_OVERDUE_BADGE = mark_safe(' <span class="badge text-bg-danger">Overdue</span>')
_YOU_PAID = mark_safe(
    '<span class="badge text-bg-warning">You recorded payments: another CAR member must'
    " verify</span>"
)
_YOU_CAN_VERIFY = mark_safe('<span class="badge text-bg-success">You can verify</span>')


def waiting_rows_html(rows) -> SafeString:
    """A <tr> for each case waiting on a money step (car_console()["rows"])."""
    return format_html_join(
        "",
        '<tr{}><td><a href="{}">#{}</a></td><td>{}</td><td>{}</td><td>{}</td>'
        "<td>{}{}</td><td>{}</td></tr>\n",
        (
            (
                _OVERDUE_ROW if row["overdue"] else "",
                row["url"],
                row["pk"],
                row["partner"],
                row["step"],
                row["balance_html"],
                row["due"],
                _OVERDUE_BADGE if row["overdue"] else "",
                row["offboard"],
            )
            for row in rows
        ),
    )


def verification_items_html(queue) -> SafeString:
    """An <li> for each case at step 9 (car_console()["verification_queue"])."""
    return format_html_join(
        "",
        '<li class="list-group-item d-flex justify-content-between flex-wrap"><span>'
        '<a href="{}">#{} {}</a> · <a href="{}">statement</a></span><span>{}</span></li>\n',
        (
            (
                row["url"],
                row["pk"],
                row["partner"],
                row["statement_url"],
                _YOU_PAID if row["you_paid"] else _YOU_CAN_VERIFY,
            )
            for row in queue
        ),
    )


def exception_rows_html(rows) -> SafeString:
    """A <tr> for each payment dated after its partner's offboard date."""
    return format_html_join(
        "",
        '<tr><td>{}</td><td>{}</td><td>{}</td><td class="text-end">{}</td><td>{}</td>'
        "<td>{}</td><td>{}</td></tr>\n",
        (
            (
                row["partner"],
                row["offboard_date"],
                row["paid_on"],
                row["amount"],
                row["reference"],
                row["recorded_by"],
                row["override"],
            )
            for row in rows
        ),
    )
