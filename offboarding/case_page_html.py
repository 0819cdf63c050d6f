"""The case page's repeated parts — history, swimlane, open balance, payments — written
with string operations and escaping, as the case tables are (case_table_html.py).

The page is the one every role opens most; in templates these loops cost about 300
calls per event and 60 per swimlane cell. The markup is what the templates wrote; every
value is escaped as the template engine would have escaped it (`conditional_escape` of
the `localize`d value)."""

from html import escape

from django.utils.formats import localize
from django.utils.html import conditional_escape
from django.utils.safestring import mark_safe

from .selectors import MONEY_WITHHELD


def _text(value) -> str:
    """A value as `{{ value }}` writes it."""
    if type(value) is str:  # most values: nothing to localize, and not marked safe
        return escape(value)
    return conditional_escape(localize(value))


def history_html(events) -> str:
    """The <li> of each EventRow, oldest first."""
    out = []
    for event in events:
        parts = [f'<li class="mb-3"><div><strong>{_text(event.heading)}</strong>']
        if event.is_payment:
            parts.append(" — payment")
        parts.append(
            f'</div><div class="small text-body-secondary">{_text(event.when)} by '
            f"{_text(event.actor_name)}"
        )
        if event.to_state_label:
            parts.append(f" → {_text(event.to_state_label)}")
        if event.late:
            parts.append(' <span class="badge text-bg-danger">late</span>')
        elif event.on_time:
            parts.append(' <span class="badge text-bg-success">on time</span>')
        parts.append("</div>")
        if event.items:
            parts.append('<dl class="row small mb-0">')
            parts.extend(
                f'<dt class="col-5">{_text(label)}</dt><dd class="col-7">{_text(value)}</dd>'
                for label, value in event.items
            )
            parts.append("</dl>")
        if event.money_withheld:
            parts.append(f'<p class="small text-body-secondary mb-0">{_text(MONEY_WITHHELD)}</p>')
        if event.note:
            parts.append(f'<p class="small mb-0">“{_text(event.note)}”</p>')
        parts.extend(
            f'<div class="small"><a href="{_text(file.url)}">📎 {_text(file.name)}</a>'
            f" ({_text(file.size)})</div>"
            for file in event.files
        )
        parts.append("</li>")
        out.append("".join(parts))
    return mark_safe("\n".join(out))  # noqa: S308 - every value is escaped above


def swimlane_html(lanes, cells, step_due: str) -> str:
    """The swimlane: a lanes-by-steps table on wide screens, a numbered list on narrow."""
    head = "".join(f'<th scope="col" class="text-center">{cell.step.number}</th>' for cell in cells)
    rows = []
    for row in lanes:
        parts = [f'<tr><th scope="row" class="lane-head">{_text(row["lane"].label)}</th>']
        for cell in row["cells"]:
            if cell.empty:
                parts.append(cell.empty)  # already HTML: a run of empty cells
                continue
            if cell.event:
                state = f"✓ {_text(cell.event.actor_username)}<br>{_text(cell.done_at)}"
            elif cell.status == "current":
                state = f"▶ now<br>due {_text(step_due)}" if step_due else "▶ now"
            else:
                state = _text(cell.status)
            parts.append(
                f'<td class="step step-{_text(cell.status)}" title="{_text(cell.title)}">'
                f'<div class="fw-semibold small">{_text(cell.step.title)}</div>'
                f'<div class="small">{state}</div></td>'
            )
        parts.append("</tr>")
        rows.append("".join(parts))
    items = []
    for cell in cells:
        done = f" · {_text(cell.event.actor_username)} {_text(cell.done_on)}" if cell.event else ""
        items.append(
            f'<li class="list-group-item step-{_text(cell.status)}">'
            f'<span class="fw-semibold">{_text(cell.step.title)}</span> '
            f'<span class="badge text-bg-light">{_text(cell.step.lane.label)}</span>'
            f" — {_text(cell.status)}{done}</li>"
        )
    return mark_safe(  # noqa: S308 - every value is escaped above
        '<div class="swimlane d-none d-lg-block">'
        '<table class="table table-bordered table-sm mb-1">'
        '<caption class="visually-hidden">Swimlane: five lanes by 13 steps</caption>'
        f'<thead><tr><th scope="col" class="lane-head">Lane</th>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
        f'<ol class="list-group list-group-numbered d-lg-none">{"".join(items)}</ol>'
    )


def balance_html(lines, totals: dict) -> str:
    """The open balance's rows (BalanceLine) and its totals per currency."""
    rows = []
    for line in lines:
        detail = "" if line.detail is None else f" <small>{_text(line.detail)}</small>"
        paid = f" ({_text(line.paid)} paid)" if line.paid else ""
        rows.append(
            f"<tr><td>{_text(line.reference)}{detail}</td><td>{_text(line.kind)}</td>"
            f"<td>{_text(line.status)}{paid}</td>"
            f'<td class="text-end">{_text(line.amount)} {_text(line.currency)}</td></tr>'
        )
    footer = "".join(
        f'<tr><th colspan="3" scope="row">Open balance {_text(currency)}</th>'
        f'<td class="text-end fw-bold">{_text(total)} {_text(currency)}</td></tr>'
        for currency, total in totals.items()
    )
    return mark_safe(  # noqa: S308 - every value is escaped above
        f"<tbody>{''.join(rows)}</tbody><tfoot>{footer}</tfoot>"
    )


def payments_html(payments) -> str:
    """The newest payments (PaymentRow), one <li> each."""
    return mark_safe(  # noqa: S308 - every value is escaped above
        "".join(
            f"<li>{_text(pay.paid_on)} · {_text(pay.amount)} {_text(pay.currency)} on "
            f"{_text(pay.payout_reference)} · {_text(pay.method_label)} · ref "
            f"{_text(pay.reference)} · by {_text(pay.recorded_by)}</li>"
            for pay in payments
        )
    )
