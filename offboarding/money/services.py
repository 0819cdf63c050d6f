"""The only writers of the ledger: payments, voids, order resolutions, commission roll-ups,
accruals. Each checks CAR, the case's step (when done for a case) and the payment guard,
and records a case event when it happens inside a case."""

import datetime as dt
import uuid
from collections import defaultdict
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from offboarding import access, step_rules
from offboarding.models import EventKind
from offboarding.process import LEDGER_STEP, Lane
from offboarding.services import ActionRefused, CaseMovedOn, lock_case, record_event
from partners.models import Partner
from payouts.models import (
    OUTSTANDING_STATUSES,
    Commission,
    CommissionStatus,
    Order,
    OrderStatus,
    Payment,
    PaymentMethod,
    Payout,
    PayoutStatus,
)
from payouts.money import checked_amount

from . import guard, idempotency, overrides


def _case_at_ledger_step(actor, case_id, expected_state):
    case = lock_case(case_id)
    if case.state != expected_state or case.state != LEDGER_STEP.state:
        raise CaseMovedOn()
    if not access.can_perform(actor, case, Lane.CAR):
        raise ActionRefused("Only CAR can change what is paid or owed.")
    return case


def _require_car(actor):
    if not access.holds_lane(actor, Lane.CAR):
        raise ActionRefused("Only CAR can change what is paid or owed.")


def _amount(value, currency) -> Decimal:
    try:
        return checked_amount(value, currency)
    except (TypeError, ValidationError) as error:
        message = error.messages[0] if isinstance(error, ValidationError) else str(error)
        raise ActionRefused(
            f"The amount must be a positive decimal, e.g. 125.00: {message}"
        ) from None


def _covered(actor, needed: overrides.NeedsOverride):
    """The approved override covering `needed`, or NeedsOverride raised for the caller."""
    override = overrides.find_approved(actor=actor, needed=needed)
    if override is None:
        raise needed
    overrides.use(override)
    return override


def _pay(
    *,
    actor,
    case,
    payout,
    amount,
    paid_on,
    method,
    reference,
    key,
    system,
    fingerprint,
    batch_key=None,
):
    if payout.status not in OUTSTANDING_STATUSES:
        raise ActionRefused(
            f"Payout {payout.reference} is already {payout.get_status_display().lower()}."
        )
    amount = _amount(amount, payout.currency)
    if amount > payout.remaining:
        raise ActionRefused(
            f"{amount} {payout.currency} is more than the {payout.remaining} {payout.currency} "
            f"still owed on {payout.reference}."
        )
    if method not in PaymentMethod.values:
        raise ActionRefused(f"{method!r} is not a payment method.")
    if problem := step_rules.payment_date_problem(paid_on, payout):  # the form's rule too
        raise ActionRefused(problem)
    cutoff = guard.offboard_date_of(payout.partner)
    after = guard.is_after(cutoff, on=paid_on)
    override = None
    if after:
        override = _covered(
            actor,
            overrides.NeedsOverride(
                f"{payout.partner} leaves or left the program on {cutoff:%Y-%m-%d}: a payment "
                "recorded or dated after it needs an override approved by a second CAR user.",
                partner=payout.partner,
                kind=overrides.OverrideKind.PAYMENT,
                payout=payout,
                amount=amount,
                currency=payout.currency,
            ),
        )
    try:
        with transaction.atomic():
            payment = Payment.objects.create(
                payout=payout,
                case=case,
                amount=amount,
                currency=payout.currency,
                paid_on=paid_on,
                method=method,
                payment_system=system,
                reference=reference.strip(),
                idempotency_key=key,
                request_fingerprint=fingerprint,
                batch_key=batch_key,
                recorded_by=actor,
                override=override,
            )
            # The flag's one writer (the database's trigger sets it too, on PostgreSQL).
            guard.flag_payments_after(payout.partner, cutoff)
            # The row is locked (select_for_update), so the sum is computed exactly here
            # rather than by the database (SQLite would add binary floats).
            fully_paid = amount == payout.remaining
            Payout.objects.filter(pk=payout.pk).update(
                paid_amount=payout.paid_amount + amount,
                status=PayoutStatus.PAID if fully_paid else PayoutStatus.PENDING,
            )
    except IntegrityError:
        raise ActionRefused(
            f"Payment reference {reference} is already recorded in {system}, or the payout "
            "would be overpaid."
        ) from None
    if case is not None:
        record_event(
            case,
            kind=EventKind.PAYMENT_RECORDED,
            actor=actor,
            from_state=case.state,
            step_number=LEDGER_STEP.number,
            data={
                "payout": payout.reference,
                "amount": str(amount),
                "currency": payout.currency,
                "paid_on": paid_on,
                "method": method,
                "reference": payment.reference,
                "override": override.reason if override else "",
                "override_approved_by": override.approved_by if override else "",
            },
        )
    return payment


def _ask_for_override(actor, needed, override_reason, case_id):
    """After a refused ledger write: with a reason, an override is asked for (in its own
    transaction, so it stays) and the caller is told; without one, what is needed."""
    if not (override_reason or "").strip():
        raise ActionRefused(
            f"{needed} Give a reason to ask a second CAR user for an override."
        ) from None
    override = overrides.request_override(
        actor=actor, needed=needed, reason=override_reason, case_id=case_id
    )
    raise overrides.OverrideRequested(
        f"Nothing was recorded yet: an override for the {override.describe()} is waiting for "
        "another CAR user's approval. Once approved, record it again."
    ) from None


def record_payment(
    *,
    actor,
    payout_id,
    amount: Decimal,
    paid_on: dt.date,
    reference: str,
    method: str = PaymentMethod.ACH,
    idempotency_key: uuid.UUID | None = None,
    case_id=None,
    expected_state: str = LEDGER_STEP.state,
    payment_system: str = "AP",
    override_reason: str = "",
) -> Payment:
    """Record one payment against an outstanding payout (in step 8 when `case_id` is given).

    The same `idempotency_key` with the same arguments (double click, retry, two tabs)
    records one payment and returns it each time; with other arguments it is refused.
    Overpaying, paying a settled payout, a date before the payout was earned or in the
    future, reusing a payment reference, and anything recorded or dated after the offboard
    date without an override approved by a second CAR user are refused. With
    `override_reason`, such a payment asks for that override (OverrideRequested).
    """
    key = idempotency_key or uuid.uuid4()
    fingerprint = idempotency.fingerprint(
        "payment",
        payout_id,
        idempotency.amount_text(amount),
        paid_on,
        method,
        reference,
        payment_system,
        case_id,
    )
    replayed = idempotency.replayed(key, fingerprint)
    if replayed:
        return replayed[0]
    try:
        with transaction.atomic():
            case = _case_at_ledger_step(actor, case_id, expected_state) if case_id else None
            if case is None:
                _require_car(actor)
            try:
                payout = (
                    Payout.objects.select_for_update().select_related("partner").get(pk=payout_id)
                )
            except (Payout.DoesNotExist, ValueError, TypeError):
                raise ActionRefused("No such payout.") from None
            if case is not None and payout.partner_id != case.partner_id:
                raise ActionRefused("That payout does not belong to this partner.")
            return _pay(
                actor=actor,
                case=case,
                payout=payout,
                amount=amount,
                paid_on=paid_on,
                method=method,
                reference=reference,
                key=key,
                system=payment_system,
                fingerprint=fingerprint,
            )
    except overrides.NeedsOverride as needed:
        _ask_for_override(actor, needed, override_reason, case_id)
    except ActionRefused:
        # A concurrent twin with the same key may have committed first: that is success.
        replayed = idempotency.replayed(key, fingerprint)
        if replayed:
            return replayed[0]
        raise


def pay_in_full(
    *,
    actor,
    case_id,
    payout_ids,
    paid_on: dt.date,
    method: str,
    batch_reference: str,
    idempotency_key: uuid.UUID,
    expected_state: str = LEDGER_STEP.state,
) -> list[Payment]:
    """Pay several payouts in full in one batch (one transaction, all or nothing). Each line's
    reference is the batch reference and the payout's. The same batch resubmitted records
    nothing new; the same key with another selection, date, method or reference is refused.
    After the offboard date each payout needs its own approved override."""
    batch_reference = (batch_reference or "").strip()
    if not batch_reference:
        raise ActionRefused("Give the batch's payment reference.")
    if not payout_ids:
        raise ActionRefused("Choose at least one payout to pay.")
    fingerprint = idempotency.fingerprint(
        "batch",
        ",".join(sorted({str(pk) for pk in payout_ids})),
        paid_on,
        method,
        batch_reference,
        case_id,
    )
    replayed = idempotency.replayed(idempotency_key, fingerprint)
    if replayed:
        return replayed
    try:
        with transaction.atomic():
            case = _case_at_ledger_step(actor, case_id, expected_state)
            payouts = list(
                Payout.objects.select_for_update()
                .select_related("partner")
                .filter(pk__in=payout_ids, partner_id=case.partner_id)
                .order_by("pk")
            )
            if len(payouts) != len(set(payout_ids)):
                raise ActionRefused("Some of the chosen payouts do not belong to this partner.")
            # Each payment's reference is "<batch>/<payout>"; say so before the database would.
            limit = Payment._meta.get_field("reference").max_length
            for payout in payouts:
                if len(f"{batch_reference}/{payout.reference}") > limit:
                    raise ActionRefused(
                        f"The batch reference is too long for payout {payout.reference}: "
                        f"with it, the payment's reference would exceed {limit} characters. "
                        "Use a shorter batch reference."
                    )
            return [
                _pay(
                    actor=actor,
                    case=case,
                    payout=payout,
                    amount=payout.remaining,
                    paid_on=paid_on,
                    method=method,
                    reference=f"{batch_reference}/{payout.reference}",
                    key=uuid.uuid5(idempotency_key, str(payout.pk)),
                    system="AP",
                    fingerprint=fingerprint,
                    batch_key=idempotency_key,
                )
                for payout in payouts
            ]
    except overrides.NeedsOverride as needed:
        raise ActionRefused(
            f"{needed} Pay {needed.payout.reference} on its own, with an override reason."
        ) from None


def void_payout(*, actor, case_id, payout_id, reason: str, expected_state=LEDGER_STEP.state):
    reason = (reason or "").strip()
    if not reason:
        raise ActionRefused("Say why the payout is voided.")
    with transaction.atomic():
        case = _case_at_ledger_step(actor, case_id, expected_state)
        try:
            payout = Payout.objects.select_for_update().get(pk=payout_id, partner=case.partner)
        except (Payout.DoesNotExist, ValueError, TypeError):
            raise ActionRefused("That payout does not belong to this partner.") from None
        if payout.status not in OUTSTANDING_STATUSES or payout.paid_amount > 0:
            raise ActionRefused(
                f"Payout {payout.reference} cannot be voided: it is "
                f"{payout.get_status_display().lower()} with {payout.paid_amount} paid."
            )
        payout.status = PayoutStatus.VOID
        payout.void_reason = reason[:300]
        payout.save(update_fields=["status", "void_reason"])
        record_event(
            case,
            kind=EventKind.LEDGER_CHANGED,
            actor=actor,
            from_state=case.state,
            step_number=LEDGER_STEP.number,
            data={"voided_payout": payout.reference, "reason": reason},
        )
    return payout


def resolve_order(
    *,
    actor,
    case_id,
    order_id,
    outcome: str,
    note: str = "",
    expected_state=LEDGER_STEP.state,
    override_reason: str = "",
):
    """Settle an open order: *closed* earns its commission (a new open commission, guarded
    as any accrual), *cancelled* earns nothing and needs a note."""
    if problem := step_rules.order_resolution_problem(outcome, note):
        raise ActionRefused(problem)
    try:
        return _resolve_order(actor, case_id, order_id, outcome, note, expected_state)
    except overrides.NeedsOverride as needed:
        _ask_for_override(actor, needed, override_reason, case_id)


def _resolve_order(actor, case_id, order_id, outcome, note, expected_state):
    with transaction.atomic():
        case = _case_at_ledger_step(actor, case_id, expected_state)
        try:
            order = Order.objects.select_for_update().get(
                pk=order_id, partner=case.partner, status=OrderStatus.OPEN
            )
        except (Order.DoesNotExist, ValueError, TypeError):
            raise ActionRefused("No such open order for this partner.") from None
        order.status = outcome
        order.resolution_note = note.strip()[:300]
        order.save(update_fields=["status", "resolution_note"])
        if outcome == OrderStatus.CLOSED:
            today = timezone.localdate()
            _new_commission(
                actor,
                case.partner,
                source="order",
                reference=order.reference,
                amount=order.amount,
                currency=order.currency,
                period_start=order.ordered_on,
                period_end=today,
                earned_on=today,
            )
        record_event(
            case,
            kind=EventKind.LEDGER_CHANGED,
            actor=actor,
            from_state=case.state,
            step_number=LEDGER_STEP.number,
            data={"order": order.reference, "outcome": outcome, "note": order.resolution_note},
        )
    return order


def roll_up_commissions(*, actor, case_id, expected_state=LEDGER_STEP.state) -> list[Payout]:
    """Turn the partner's open commissions into one payout per currency, to be paid."""
    with transaction.atomic():
        case = _case_at_ledger_step(actor, case_id, expected_state)
        commissions = list(
            Commission.objects.select_for_update()
            .filter(partner=case.partner, status=CommissionStatus.OPEN)
            .order_by("pk")
        )
        if not commissions:
            raise ActionRefused("There are no open commissions to pay out.")
        by_currency = defaultdict(list)
        for commission in commissions:
            by_currency[commission.currency].append(commission)
        payouts = []
        for currency, lines in sorted(by_currency.items()):
            payout = Payout.objects.create(
                partner=case.partner,
                reference=f"FINAL-{case.pk}-{currency}-{lines[0].pk}",
                description=f"Final commissions ({len(lines)} line(s))",
                amount=sum((line.amount for line in lines), Decimal("0")),
                currency=currency,
                earned_on=max(line.earned_on for line in lines),
            )
            Commission.objects.filter(pk__in=[line.pk for line in lines]).update(
                status=CommissionStatus.IN_PAYOUT, payout=payout
            )
            payouts.append(payout)
        record_event(
            case,
            kind=EventKind.LEDGER_CHANGED,
            actor=actor,
            from_state=case.state,
            step_number=LEDGER_STEP.number,
            data={"payouts_created": [p.reference for p in payouts]},
        )
    return payouts


def _accrual_override(actor, partner, *, kind, earned_on, amount, currency, reference):
    """CAR only. Once the partner's offboard date has passed (on either clock), new money
    needs an approved override; it covers only an amount earned before the offboard date."""
    _require_car(actor)
    cutoff = guard.offboard_date_of(partner)
    if not guard.is_after(cutoff, on=earned_on):
        return None
    if earned_on > cutoff:
        raise ActionRefused(
            f"{partner} leaves or left the program on {cutoff:%Y-%m-%d}: nothing earned after "
            f"it ({earned_on:%Y-%m-%d}) can be recorded, with or without an override."
        )
    return _covered(
        actor,
        overrides.NeedsOverride(
            f"{partner} leaves or left the program on {cutoff:%Y-%m-%d}: a {kind} recorded "
            "after it needs an override approved by a second CAR user.",
            partner=partner,
            kind=kind,
            amount=amount,
            currency=currency,
            reference=reference,
        ),
    )


def _new_line(model, kind, actor, partner, *, reference, amount, currency, earned_on, **fields):
    """A new commission or payout (`model`), its amount checked and the guard applied."""
    amount = _amount(amount, currency)
    override = _accrual_override(
        actor,
        partner,
        kind=kind,
        earned_on=earned_on,
        amount=amount,
        currency=currency,
        reference=reference,
    )
    return model.objects.create(
        partner=partner,
        reference=reference,
        amount=amount,
        currency=currency,
        earned_on=earned_on,
        override=override,
        **fields,
    )


def _new_commission(actor, partner, **fields) -> Commission:
    return _new_line(Commission, overrides.OverrideKind.COMMISSION, actor, partner, **fields)


def accrue_commission(
    *,
    actor,
    partner: Partner,
    source,
    reference,
    amount,
    currency,
    period_start,
    period_end,
    earned_on,
    override_reason="",
) -> Commission:
    """A commission earned by the partner. After the offboard date it needs an approved
    override (asked for with `override_reason`), and only for an amount earned before it."""
    try:
        with transaction.atomic():
            return _new_commission(
                actor,
                partner,
                source=source,
                reference=reference,
                amount=amount,
                currency=currency,
                period_start=period_start,
                period_end=period_end,
                earned_on=earned_on,
            )
    except overrides.NeedsOverride as needed:
        _ask_for_override(actor, needed, override_reason, None)


def create_payout(
    *,
    actor,
    partner: Partner,
    reference,
    description,
    amount,
    currency,
    earned_on,
    override_reason="",
) -> Payout:
    """A payout owed to the partner; the payment guard applies as for a commission."""
    try:
        with transaction.atomic():
            return _new_line(
                Payout,
                overrides.OverrideKind.PAYOUT,
                actor,
                partner,
                reference=reference,
                description=description,
                amount=amount,
                currency=currency,
                earned_on=earned_on,
            )
    except overrides.NeedsOverride as needed:
        _ask_for_override(actor, needed, override_reason, None)
