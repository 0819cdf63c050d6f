"""The only writers of guard overrides (Decision D): one CAR user asks, another approves or
refuses, and the payment or accrual it covers uses it once.

An override covers exactly what was asked: its kind, the payout (for a payment), the amount
and currency. Each request and decision is an event on the partner's case, and the other
side is notified.
"""

from django.db import transaction
from django.utils import timezone

from notifications.services import users_with_permission
from offboarding import access
from offboarding import notices as notify
from offboarding.models import EventKind
from offboarding.process import LANE_PERMISSION, Lane
from offboarding.services import ActionRefused, lock_case, record_event
from payouts.models import GuardOverride, OverrideKind, OverrideStatus


class NeedsOverride(Exception):
    """Raised inside a ledger service's transaction: what the override must cover."""

    def __init__(self, message, *, partner, kind, amount, currency, payout=None, reference=""):
        super().__init__(message)
        self.partner, self.kind, self.payout = partner, kind, payout
        self.amount, self.currency, self.reference = amount, currency, reference


class OverrideRequested(ActionRefused):
    """Nothing was recorded: an override is now waiting for a second CAR user."""


def find_approved(*, actor, needed: NeedsOverride) -> GuardOverride | None:
    """An approved, unused override covering `needed`, locked for the caller's transaction.

    Its approver does not use it: the checker never records what they approved."""
    overrides = GuardOverride.objects.select_for_update().filter(
        partner=needed.partner,
        kind=needed.kind,
        status=OverrideStatus.APPROVED,
        amount=needed.amount,
        currency=needed.currency,
    )
    if needed.payout is not None:
        overrides = overrides.filter(payout=needed.payout)
    else:
        overrides = overrides.filter(reference=needed.reference)
    return overrides.exclude(approved_by=actor).order_by("pk").first()


def use(override: GuardOverride) -> None:
    override.status = OverrideStatus.USED
    override.save(update_fields=["status"])


def _open_case_of(partner):
    return partner.offboarding_cases.order_by("-opened_at").first()


def _event(override, *, actor, what: str, **data):
    if override.case_id is None:
        return
    case = lock_case(override.case_id)
    record_event(
        case,
        kind=EventKind.LEDGER_CHANGED,
        actor=actor,
        from_state=case.state,
        data={"override": override.describe(), what: actor, **data},
    )


def request_override(*, actor, needed: NeedsOverride, reason: str, case_id=None) -> GuardOverride:
    """Ask a second CAR user to allow what `needed` describes. The same request twice
    (a double click, a retry) is one request."""
    reason = (reason or "").strip()
    if not access.holds_lane(actor, Lane.CAR):
        raise ActionRefused("Only CAR can ask for a payment-guard override.")
    if not reason:
        raise ActionRefused("An override needs a reason.")
    with transaction.atomic():
        existing = GuardOverride.objects.filter(
            partner=needed.partner,
            kind=needed.kind,
            payout=needed.payout,
            amount=needed.amount,
            currency=needed.currency,
            reference=needed.reference,
            status=OverrideStatus.PENDING,
        ).first()
        if existing is not None:
            return existing
        case = _open_case_of(needed.partner) if case_id is None else None
        override = GuardOverride.objects.create(
            partner=needed.partner,
            case_id=case_id or (case.pk if case else None),
            kind=needed.kind,
            payout=needed.payout,
            amount=needed.amount,
            currency=needed.currency,
            reference=needed.reference,
            reason=reason,
            requested_by=actor,
        )
        _event(override, actor=actor, what="override_requested_by", reason=reason)
        notify.override_requested(
            override=override,
            actor=actor,
            approvers=users_with_permission(LANE_PERMISSION[Lane.CAR]),
        )
    return override


def _decide(actor, override_id) -> GuardOverride:
    if not access.holds_lane(actor, Lane.CAR):
        raise ActionRefused("Only CAR can decide on a payment-guard override.")
    try:
        override = (
            GuardOverride.objects.select_for_update(of=("self",))
            .select_related("partner", "payout", "requested_by")
            .get(pk=override_id)
        )
    except (GuardOverride.DoesNotExist, ValueError, TypeError):
        raise ActionRefused("No such override.") from None
    if override.status != OverrideStatus.PENDING:
        raise ActionRefused(f"This override is already {override.get_status_display().lower()}.")
    if override.requested_by_id == actor.pk:
        raise ActionRefused(
            "Four eyes: you asked for this override, so another CAR user must decide on it."
        )
    return override


def _lock_its_case(override_id) -> None:
    """Lock the override's case first, in the order the ledger services lock (case, then
    ledger rows), so a decision and a payment never wait on each other."""
    case_id = GuardOverride.objects.filter(pk=override_id).values_list("case_id", flat=True)
    case_id = next(iter(case_id), None) if str(override_id).isdigit() else None
    if case_id is not None:
        lock_case(case_id)


def approve_override(*, actor, override_id) -> GuardOverride:
    """A second CAR user approves; the requester (or any CAR user but the approver) may then
    record what it covers."""
    with transaction.atomic():
        _lock_its_case(override_id)
        override = _decide(actor, override_id)
        override.status = OverrideStatus.APPROVED
        override.approved_by = actor
        override.decided_at = timezone.now()
        override.save(update_fields=["status", "approved_by", "decided_at"])
        _event(override, actor=actor, what="override_approved_by")
        notify.override_decided(override=override, actor=actor)
    return override


def refuse_override(*, actor, override_id, reason: str) -> GuardOverride:
    reason = (reason or "").strip()
    if not reason:
        raise ActionRefused("Say why the override is refused.")
    with transaction.atomic():
        _lock_its_case(override_id)
        override = _decide(actor, override_id)
        override.status = OverrideStatus.REFUSED
        override.refused_by = actor
        override.refusal_reason = reason
        override.decided_at = timezone.now()
        override.save(update_fields=["status", "refused_by", "refusal_reason", "decided_at"])
        _event(override, actor=actor, what="override_refused_by", reason=reason)
        notify.override_decided(override=override, actor=actor)
    return override


def awaiting_approval(limit: int = 50, *, case=None):
    """Pending overrides (of one case, or all), oldest first, for the console and the case
    page."""
    pending = GuardOverride.objects.filter(status=OverrideStatus.PENDING)
    if case is not None:
        pending = pending.filter(case=case)
    return pending.select_related("partner", "payout", "requested_by", "case").order_by(
        "created_at", "pk"
    )[:limit]


__all__ = [
    "NeedsOverride",
    "OverrideKind",
    "OverrideRequested",
    "approve_override",
    "awaiting_approval",
    "find_approved",
    "refuse_override",
    "request_override",
    "use",
]
