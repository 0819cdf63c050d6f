"""The only writers of case state. Views, admin, commands and tasks call these.

Each use case: keyword-only arguments and an actor; inside one transaction it locks the
case, checks the actor, runs the transition declared on the model, saves, appends an
immutable event, and creates the notifications (an outbox: same transaction).
"""

import datetime as dt
import json
from collections.abc import Iterable, Mapping

from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, models, transaction
from django.utils import timezone
from django_fsm import ConcurrentTransition, can_proceed, has_transition_perm

from offboarding import notices as notify
from offboarding.money.guard import flag_payments_after
from partners.models import Partner, PartnerStatus, Portal
from payouts.selectors import final_statement, open_balance

from . import access, end_state, step_rules
from .calendar import BusinessCalendar
from .case_chain import upload_digests
from .deadlines import due_at, remind_at
from .models import Case, CaseEvent, EventKind, EvidenceFile
from .process import OWNER_LANES, STEP_BY_NUMBER, STEPS, CaseState, Step


class ActionRefused(Exception):
    """The actor may not do this, or the case does not allow it. The message says why."""


class CaseMovedOn(ActionRefused):
    """The case is no longer where the actor's form saw it (stale or concurrent submit)."""

    def __init__(
        self,
        message="This case has moved on since you opened it. "
        "Review its current step and try again.",
    ):
        super().__init__(message)


class _EventDataEncoder(DjangoJSONEncoder):
    """Stores models by id and label, so the event reads the same after they change."""

    def default(self, o):
        if isinstance(o, models.Model):
            return {"id": o.pk, "label": str(o)}
        return super().default(o)


def _json_ready(data: Mapping) -> dict:
    return json.loads(json.dumps(dict(data), cls=_EventDataEncoder))


def _attach_evidence(event: CaseEvent, files: Iterable) -> None:
    for upload in files:
        EvidenceFile.objects.create(
            event=event, file=upload, original_name=upload.name[:255], size=upload.size
        )


def _schedule_active_step(case: Case, now: dt.datetime) -> None:
    """Start the clock of the case's active step: due time, reminder time, nothing sent."""
    step = case.current_step
    case.step_started_at = now
    case.step_reminded_at = case.step_escalated_at = None
    if step is None:
        case.step_due_at = case.step_remind_at = None
        return
    case.step_due_at = due_at(step, activated_at=now, notice_date=case.notice_date)
    case.step_remind_at = remind_at(step, case.step_due_at, now)


def lock_case(case_id) -> Case:
    try:
        return Case.objects.select_for_update().select_related("partner").get(pk=case_id)
    except (Case.DoesNotExist, ValueError, TypeError):
        raise ActionRefused("No such case.") from None


def record_event(
    case, *, kind, actor, from_state, step_number=None, data=None, note="", files=(), due_at=None
):
    files = list(files)
    event = CaseEvent.objects.create(
        case=case,
        kind=kind,
        step_number=step_number,
        due_at=due_at,
        from_state=from_state,
        to_state=case.state,
        actor=actor,
        data=_json_ready(data or {}),
        note=note,
        # Read before the row exists, so the files are inside the event's hash (case_chain).
        evidence_digests=upload_digests(files),
    )
    _attach_evidence(event, files)
    return event


def _save_transition(case: Case) -> None:
    try:
        case.save()
    except ConcurrentTransition:
        raise CaseMovedOn() from None


def open_case(*, actor, partner_id, data: Mapping, note: str = "", evidence=()) -> Case:
    """Open an offboarding case for a partner by recording step 1 (the request to leave).

    Side effects: the partner becomes *offboarding*; the next step's performers are notified.
    """
    first_step = STEPS[0]
    evidence = list(evidence)
    _check_step_data(None, first_step, data, evidence)
    with transaction.atomic():
        try:
            partner = Partner.objects.select_for_update().get(pk=partner_id)
        except (Partner.DoesNotExist, ValueError, TypeError):
            raise ActionRefused("No such partner.") from None
        if not access.can_open_case(actor, partner):
            raise ActionRefused("Only the partner's own CAM can start offboarding.")
        if partner.status != PartnerStatus.ACTIVE:
            raise ActionRefused(
                f"{partner} is {partner.get_status_display().lower()}, not an active partner: "
                "it already has an offboarding case or has left the program."
            )
        case = Case(partner=partner, opened_by=actor)
        now = timezone.now()
        case.record_request(by=actor, data=data)
        calendar = BusinessCalendar.from_settings()
        received = dt.datetime.combine(case.request_received_on, dt.time(0), tzinfo=calendar.tz)
        request_due = due_at(first_step, activated_at=received, calendar=calendar)
        partner.begin_offboarding()
        partner.save()
        _schedule_active_step(case, now)
        try:
            with transaction.atomic():
                case.save()
        except IntegrityError:
            raise ActionRefused("This partner already has an open offboarding case.") from None
        record_event(case, kind=EventKind.OPENED, actor=actor, from_state="", note="")
        record_event(
            case,
            kind=EventKind.STEP_COMPLETED,
            actor=actor,
            from_state=first_step.state,
            step_number=first_step.number,
            data=data,
            note=note,
            files=evidence,
            due_at=request_due,
        )
        notify.case_opened(case=case, actor=actor)
        notify.step_activated(case=case, actor=actor)
    return case


def complete_step(
    *,
    actor,
    case_id,
    step_number: int,
    expected_state: str,
    data: Mapping,
    note: str = "",
    evidence=(),
) -> Case:
    """Complete the active step `step_number` of a case with the data its form collected.

    `expected_state` is the state the actor's form was rendered for: if the case has moved
    on since, nothing happens and `CaseMovedOn` says so.
    """
    step = STEP_BY_NUMBER.get(step_number)
    if step is None:
        raise ActionRefused(f"There is no step {step_number}.")
    with transaction.atomic():
        case = lock_case(case_id)
        if case.state != expected_state or case.state != step.state:
            raise CaseMovedOn()
        method = getattr(case, step.transition)
        if not method._django_fsm.get_transition(case.state).has_perm(case, actor):
            raise ActionRefused(_refusal_message(case, actor, step))
        if not can_proceed(method):
            raise ActionRefused(_unmet_condition_message(case, step))
        evidence = list(evidence)
        _check_step_data(case, step, data, evidence)
        figures = _SNAPSHOTS[step.snapshot](case) if step.snapshot else {}
        from_state, step_due = case.state, case.step_due_at
        method(by=actor, data=data)
        if step.sets_offboard_date:
            # The offboard date is known from now: payments already after it are exceptions.
            flag_payments_after(case.partner, case.offboard_date)
        if case.state == CaseState.DONE:
            # The closing transition has run; nothing is saved unless every fact holds.
            missing = end_state.gaps(case.partner, before_close=False)
            if missing:
                raise ActionRefused(end_state.refusal(missing))
        _schedule_active_step(case, timezone.now())
        _save_transition(case)
        record_event(
            case,
            kind=EventKind.STEP_COMPLETED,
            actor=actor,
            from_state=from_state,
            step_number=step_number,
            data={**data, **figures},
            note=note,
            files=evidence,
            due_at=step_due,
        )
        if case.state == CaseState.DONE:
            notify.case_closed(case=case, actor=actor)
        else:
            notify.step_activated(case=case, actor=actor)
    return case


def withdraw_case(*, actor, case_id, expected_state: str, reason: str) -> Case:
    """Withdraw a case before step 5 is completed; the partner is active again."""
    reason = (reason or "").strip()
    if not reason:
        raise ActionRefused("Give the reason the case is withdrawn.")
    with transaction.atomic():
        case = lock_case(case_id)
        if case.state != expected_state:
            raise CaseMovedOn()
        if not case.is_withdrawable:
            raise ActionRefused(
                "Step 5 is complete: the partner has left our systems, so the case must run "
                "to Done."
            )
        if not has_transition_perm(case.withdraw, actor):
            raise ActionRefused("Only the partner's CAM or a partner-ops manager can withdraw.")
        from_state = case.state
        case.withdraw(by=actor, data={"reason": reason})
        _schedule_active_step(case, timezone.now())
        _save_transition(case)
        record_event(
            case,
            kind=EventKind.WITHDRAWN,
            actor=actor,
            from_state=from_state,
            data={"reason": reason},
        )
        notify.case_withdrawn(case=case, actor=actor)
    return case


def correct_partner_portal(
    *, actor, case_id, expected_state: str, portal: str, reason: str
) -> Case:
    """Decision C: Sales Ops corrects the partner record's portal, audited on the case.

    Possible until step 10's branch is taken; step 10 then follows the corrected record.
    Side effects: a case event with the old and new portal and the reason; the CAM and the
    active step's holders are notified.
    """
    reason = (reason or "").strip()
    if not reason:
        raise ActionRefused("Say why the partner record's portal is wrong.")
    if portal not in Portal.values:
        raise ActionRefused(f"{portal!r} is not a partner portal.")
    with transaction.atomic():
        case = lock_case(case_id)
        if case.state != expected_state:
            raise CaseMovedOn()
        if not access.can_correct_portal(actor, case):
            raise ActionRefused(
                "Only Sales Ops corrects the partner record, and only until step 10 has "
                "taken the portal's branch."
            )
        partner = case.partner
        before = partner.portal
        if before == portal:
            raise ActionRefused(f"The partner record already says {partner.get_portal_display()}.")
        partner.portal = portal
        partner.save(update_fields=["portal", "updated_at"])
        record_event(
            case,
            kind=EventKind.RECORD_CORRECTED,
            actor=actor,
            from_state=case.state,
            data={"field": "portal", "from": before, "to": portal, "reason": reason},
        )
        notify.record_corrected(
            case=case,
            actor=actor,
            what=f"Portal: {Portal(before).label} → {Portal(portal).label}",
            reason=reason,
        )
    return case


def _refusal_message(case: Case, actor, step: Step) -> str:
    if step.four_eyes and access.can_perform(actor, case, step.lane):
        return (
            f"Step {step.number} needs a {step.lane.label} member who recorded no payment on "
            f"this case: you recorded payments here, so another {step.lane.label} member "
            "must verify."
        )
    owner = " for a partner you manage" if step.lane in OWNER_LANES else ""
    return f"Step {step.number} is for the {step.lane.label} lane{owner}; you cannot perform it."


def _unmet_condition_message(case: Case, step: Step) -> str:
    if step.settles_money:
        balance = open_balance(case.partner)
        return (
            f"Money is still on the table: {len(balance.payouts)} payout(s) still open or "
            "pending, "
            f"{len(balance.commissions)} open commission(s), {len(balance.orders)} open "
            "order(s). Pay, void or resolve them first."
        )
    missing = end_state.gaps(case.partner, before_close=True)
    if missing:
        return end_state.refusal(missing)
    return f"Step {step.number} cannot be completed yet."


def _check_step_data(case: Case | None, step: Step, data: Mapping, evidence) -> None:
    """The step's rules on the entered data (step_rules, which its form asks too) hold
    whoever calls: view, admin, task or command."""
    problems = step_rules.check(step, data, case=case, evidence=evidence)
    if problems:
        raise ActionRefused(" ".join(problem.message for problem in problems))


# What a completion event keeps besides the form's data, by process.Step.snapshot: the
# balance CAR decided on at step 7, the statement verified at step 9.
_SNAPSHOTS = {
    "open_balance": lambda case: {"open_balance": open_balance(case.partner).as_event_data()},
    "final_statement": lambda case: {"statement": final_statement(case).as_event_data()},
}
