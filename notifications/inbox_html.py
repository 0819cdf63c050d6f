"""The inbox's list items (<li>), as HTML.

A page shows 25 notifications; drawn by a template loop, each cost some 100 template
calls. As in offboarding/case_table_html.py, they are written with string operations, and
every value is escaped. The markup is what the template wrote."""

from html import escape

from django.utils.safestring import SafeString, mark_safe

_OPEN_CASE = (
    '  <button class="btn btn-sm btn-primary" type="submit" name="open" value="1">Open case'
    "</button>\n"
)
_NOTHING = "  \n"  # the template's line for a button it did not write
_MARK_READ = '  <button class="btn btn-sm btn-outline-secondary" type="submit">Mark read</button>\n'


def inbox_items_html(rows, csrf_input: str) -> SafeString:
    """The <li> of each InboxRow (notifications.selectors.inbox_rows), in order, with
    `csrf_input` (the form's hidden CSRF field, as {% csrf_token %} writes it) in each form."""
    items = []
    for n in rows:
        form = ""
        if n.has_case or n.unread:
            form = (
                f'<form class="d-flex gap-1" method="post" action="{escape(n.read_url)}">'
                f"{csrf_input}\n"
                f"{_OPEN_CASE if n.has_case else _NOTHING}"
                f"{_MARK_READ if n.unread else _NOTHING}"
                "  </form>"
            )
        items.append(
            '\n<li class="list-group-item d-flex justify-content-between align-items-start'
            f'{" list-group-item-warning" if n.unread else ""}">\n'
            f'  <div><div class="fw-semibold">{escape(n.title)}</div>'
            f'<div class="small pre-line">{escape(n.body)}</div>'
            f'<div class="small text-body-secondary">{escape(n.when)} · {escape(n.kind_label)}'
            f" · email {escape(n.email_label)}</div></div>\n"
            f"  {form}\n</li>\n"
        )
    return mark_safe("".join(items))  # noqa: S308 - every value above is escaped
