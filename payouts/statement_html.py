"""The final statement's table rows, as HTML.

A statement lists every line (it can run to thousands), so its rows
are formatted here with plain string operations rather than by a template loop with a
dozen variable lookups and filters per row. Every value from the database is escaped.
"""

from html import escape

from django.utils.safestring import mark_safe

from .models import PaymentMethod, PayoutStatus

_PAYOUT_STATUS_HTML = {value: escape(str(label)) for value, label in PayoutStatus.choices}
_PAYMENT_METHOD_HTML = {value: escape(str(label)) for value, label in PaymentMethod.choices}


def statement_rows_html(lines) -> str:
    """The rows (<tr>) of the final statement's table for `final_statement(...).lines`."""
    memo: dict[str, str] = {}  # escaped currencies, descriptions, usernames: few distinct

    def cached(text):
        html = memo.get(text)
        if html is None:
            html = memo[text] = escape(text)
        return html

    rows = []
    for line in lines:
        payout = line.payout
        currency = cached(payout.currency)
        status = _PAYOUT_STATUS_HTML.get(payout.status) or escape(payout.status)
        if payout.void_reason:
            status = f"{status}<br><small>{escape(payout.void_reason)}</small>"
        payments = (
            "".join(
                f"{p.paid_on.isoformat()} · {escape(p.reference)} · "
                f"{_PAYMENT_METHOD_HTML.get(p.method) or escape(p.method)} · "
                f"{cached(p.recorded_by_username)} · {p.amount}<br>"
                for p in line.payments
            )
            if line.payments
            else "—"
        )
        rows.append(
            f"<tr><td>{escape(payout.reference)}<br><small>{cached(payout.description)}</small>"
            f"</td><td>{status}</td>"
            f'<td class="text-end">{line.owed_at_notice} {currency}</td>'
            f"<td><small>{payments}</small></td>"
            f'<td class="text-end">{line.paid_since_notice} {currency}</td>'
            f'<td class="text-end">{line.remaining} {currency}</td></tr>\n'
        )
    return mark_safe("".join(rows))  # noqa: S308 - every value above is escaped
