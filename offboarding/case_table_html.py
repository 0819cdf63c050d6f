"""My work's and the case list's table rows (<tr>), and the case list's filter options
(<option>), as HTML.

The two most visited pages show 25 rows of seven cells; drawn by a template loop, the
rows cost more than the rest of the page (about 180 template calls a row), and the
manager's filters add some 80 options. As in payouts/statement_html.py, they are written
with plain string operations, and every value is escaped."""

from html import escape

from django.utils.safestring import SafeString, mark_safe

_OVERDUE_ROW = ' class="table-danger"'
_OVERDUE_BADGE = ' <span class="badge text-bg-danger">Overdue</span>'
_NONE = "—"


def case_rows_html(rows) -> SafeString:
    """The <tr> of each CaseRow (offboarding.selectors.case_rows), in order."""
    html = []
    for row in rows:
        overdue = row.overdue
        html.append(
            f"<tr{_OVERDUE_ROW if overdue else ''}>"
            f'<td><a href="{escape(row.url)}">#{row.pk}</a></td>'
            f"<td>{escape(row.partner_name)}</td>"
            f"<td>{escape(row.cam_name) or _NONE}</td>"
            f"<td>{escape(row.state_label)}</td>"
            f"<td>{escape(row.lane_label) or _NONE}</td>"
            f"<td>{escape(row.due) or _NONE}{_OVERDUE_BADGE if overdue else ''}</td>"
            f"<td>{escape(row.offboard_date) or _NONE}</td></tr>\n"
        )
    return mark_safe("".join(html))  # noqa: S308 - every value above is escaped


def options_html(options) -> SafeString:
    """The <option> of each selectors.Option, in order."""
    return mark_safe(  # noqa: S308 - every value is escaped
        "".join(
            f'<option value="{escape(o.value)}"{" selected" if o.selected else ""}>'
            f"{escape(o.label)}</option>"
            for o in options
        )
    )
