"""My work's and the case list's table rows (<tr>), and the case list's filter options
(<option>), as HTML.

The two most visited pages show 25 rows of seven cells; drawn by a template loop, the
rows cost more than the rest of the page (about 180 template calls a row), and the
manager's filters add some 80 options. Django's format_html_join escapes every value, as
the templates did."""

from django.utils.html import format_html_join
from django.utils.safestring import SafeString, mark_safe

_OVERDUE_ROW = mark_safe(' class="table-danger"')
_OVERDUE_BADGE = mark_safe(' <span class="badge text-bg-danger">Overdue</span>')
_SELECTED = mark_safe(" selected")
_NONE = "—"
_ROW = (
    '<tr{}><td><a href="{}">#{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>'
    "<td>{}{}</td><td>{}</td></tr>\n"
)


def case_rows_html(rows) -> SafeString:
    """The <tr> of each CaseRow (offboarding.selectors.case_rows), in order."""
    return format_html_join(
        "",
        _ROW,
        (
            (
                _OVERDUE_ROW if row.overdue else "",
                row.url,
                row.pk,
                row.partner_name,
                row.cam_name or _NONE,
                row.state_label,
                row.lane_label or _NONE,
                row.due or _NONE,
                _OVERDUE_BADGE if row.overdue else "",
                row.offboard_date or _NONE,
            )
            for row in rows
        ),
    )


def options_html(options) -> SafeString:
    """The <option> of each selectors.Option, in order."""
    return format_html_join(
        "",
        '<option value="{}"{}>{}</option>',
        ((o.value, _SELECTED if o.selected else "", o.label) for o in options),
    )
