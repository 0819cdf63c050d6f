"""What the notification outbox delivered, read from the database and the SMTP sink.

Shared by the broker-outage and dead-worker faults: rows still owed an email, rows sent that
the sink never saw (lost), Message-IDs the sink saw that no row owns or rows written twice for
one effect (duplicated), and the same Message-ID received more than once (a resend: allowed).
"""

import sys
from collections import Counter


def message_id(notification) -> str:
    return f"<{notification.delivery_key}@partnerops>"


def owed(since_pk: int = 0) -> int:
    from notifications.models import EmailStatus, Notification

    return Notification.objects.filter(
        pk__gt=since_pk, email_status__in=[EmailStatus.PENDING, EmailStatus.SENDING]
    ).count()


def tally(stack, since_pk: int = 0) -> dict:
    from notifications.models import EmailStatus, Notification

    rows = list(Notification.objects.filter(pk__gt=since_pk))
    emailed = [r for r in rows if r.email_status not in (EmailStatus.NOT_EMAILED,)]
    emailed = [r for r in emailed if r.email_status not in (EmailStatus.IN_DIGEST,)]
    received = Counter(mail["message_id"] for mail in stack.mails())
    ours = {message_id(r): r for r in emailed}
    not_sent = [r for r in emailed if r.email_status != EmailStatus.SENT]
    never_arrived = [
        r for r in emailed if r.email_status == EmailStatus.SENT and not received[message_id(r)]
    ]
    # The same effect written twice: one notification per recipient, case and kind is what
    # each click (open, withdraw, a step) and each sweep claim writes.
    # Rows about no case and no digest day (the worker alarm: "stopped", "came back") may
    # rightly repeat, once per outage.
    per_effect = Counter(
        (r.recipient_id, r.case_id, r.kind, r.digest_day)
        for r in rows
        if r.case_id is not None or r.digest_day is not None
    )
    duplicate_rows = sum(count - 1 for count in per_effect.values() if count > 1)
    for key, count in per_effect.items():
        if count > 1:
            print(
                f"duplicated effect (recipient, case, kind, digest day) {key}: {count} rows",
                file=sys.stderr,
            )
    # A Message-ID no row owns (rows from before `since_pk`, e.g. the demo seed's, are owned).
    every_key = {str(key) for key in Notification.objects.values_list("delivery_key", flat=True)}
    strangers = [
        mid for mid in received if mid not in ours and mid[1:].split("@")[0] not in every_key
    ]
    return {
        "rows": len(emailed),
        "lost": len(not_sent) + len(never_arrived),
        "failed": sum(1 for r in emailed if r.email_status == EmailStatus.FAILED),
        "duplicated": duplicate_rows + len(strangers),
        "resends": sum(count - 1 for mid, count in received.items() if mid in ours),
        "received": sum(received[mid] for mid in ours),
    }
