"""The final statement as CSV rows: the statement page's download and the case record export
write the same rows (through `core.safe_csv`)."""

from collections.abc import Iterator

HEADER = (
    "payout",
    "currency",
    "status",
    "owed_at_notice",
    "payment_reference",
    "paid_on",
    "method",
    "paid",
    "recorded_by",
    "remaining",
    "void_reason",
)


def statement_csv_rows(case, data) -> Iterator[list]:
    """The rows of `data` (`payouts.selectors.final_statement(case)`): the partner, a header,
    a row per payment (or one for a payout never paid), then a total per currency."""
    yield [
        "partner",
        case.partner.display_name,
        "record id",
        case.partner.record_id,
        "notice date",
        data.notice_date or "",
    ]
    yield list(HEADER)
    for line in data.lines:
        base = [
            line.payout.reference,
            line.payout.currency,
            line.payout.status,
            line.owed_at_notice,
        ]
        if not line.payments:
            yield [*base, "", "", "", "", "", line.remaining, line.payout.void_reason]
        for index, payment in enumerate(line.payments):
            last = index == len(line.payments) - 1
            yield [
                *base,
                payment.reference,
                payment.paid_on,
                payment.method,
                payment.amount,
                payment.recorded_by_username,
                line.remaining if last else "",
                line.payout.void_reason if last else "",
            ]
    for currency, sums in data.totals.items():
        yield [
            "TOTAL",
            currency,
            "",
            sums["owed_at_notice"],
            "",
            "",
            "",
            sums["paid"],
            "",
            sums["remaining"],
            "",
        ]
