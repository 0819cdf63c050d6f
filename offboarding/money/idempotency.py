"""Idempotency keys as payment systems use them: a key names one request.

Replayed with the same arguments, the request returns what the first one recorded; the
same key with other arguments is refused, since it would otherwise silently return a
payment for something else (and leave what was asked for unpaid).
"""

import hashlib
import json
import uuid
from decimal import Decimal, InvalidOperation

from django.db.models import Q

from offboarding.services import ActionRefused
from payouts.models import Payment


class KeyReused(ActionRefused):
    """The key was used for a request with other arguments: nothing was recorded."""


def amount_text(value) -> str:
    """An amount as the fingerprint sees it: 12.5 and "12.50" are the same amount."""
    try:
        return format(Decimal(str(value).strip()).normalize(), "f")
    except (InvalidOperation, ValueError):
        return str(value)


def fingerprint(*arguments) -> str:
    """A digest of a request's arguments (amounts passed through `amount_text`)."""
    text = json.dumps([str(a).strip() if a is not None else None for a in arguments])
    return hashlib.sha256(text.encode()).hexdigest()


def key_used(key) -> bool:
    try:
        key = uuid.UUID(str(key))
    except ValueError:
        return False
    return Payment.objects.filter(Q(idempotency_key=key) | Q(batch_key=key)).exists()


def replayed(key, request_fingerprint: str) -> list[Payment]:
    """The payments a first request with `key` recorded (none if it is new); KeyReused if
    that request asked for something else."""
    payments = list(
        Payment.objects.filter(Q(idempotency_key=key) | Q(batch_key=key)).order_by("pk")
    )
    # A payment recorded before fingerprints were kept (blank) replays as it always did.
    if any(p.request_fingerprint not in ("", request_fingerprint) for p in payments):
        first = payments[0]
        raise KeyReused(
            f"This request's key was already used for another payment ({first.reference}, "
            f"{first.amount} {first.currency} on {first.paid_on:%Y-%m-%d}), so nothing was "
            "recorded. Reload the page and enter the payment again."
        )
    return payments
