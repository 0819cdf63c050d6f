"""Reads the case pages need. Each returns a bounded number of queries."""

import datetime as dt
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.db.models import Case as Switch
from django.db.models import Count, Exists, F, OuterRef, Q, Subquery, Value, When
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.utils import timezone

from accounts.roles import Role
from core.display import local_minute

from . import access, visibility
from .models import Case, CaseEvent, EventKind
from .process import (
    CLOSED_STATES,
    LANE_PERMISSION,
    OPEN_STATES,
    OWNER_LANES,
    STEPS,
    CaseState,
    Lane,
    step_for_state,
)
from .templatetags.case_events import field_label, field_value, state_label


def person_name(username, first_name, last_name) -> str:
    """What User.get_full_name() or the username would show, from columns read as values."""
    return f"{first_name or ''} {last_name or ''}".strip() or username or ""


def _with_list_relations(queryset):
    return queryset.select_related("partner", "partner__cam")


def lanes_of(user) -> list[Lane]:
    return [lane for lane in Lane if user.has_perm(LANE_PERMISSION[lane])]


def my_work(user):
    """Open cases whose active step is this user's to perform, most urgent first."""
    lanes = lanes_of(user)
    if not lanes:
        return Case.objects.none()
    # One IN list for the steps of the partner's own CAM, one for the rest: PostgreSQL then
    # probes the CAM's partners' open cases by (partner, state) instead of reading them all.
    owned, others = [], []
    for lane in lanes:
        states = [step.state for step in STEPS if step.lane == lane]
        (owned if lane in OWNER_LANES and not user.is_superuser else others).extend(states)
    condition = Q()
    if owned:
        condition |= Q(state__in=owned, partner__cam=user)
    if others:
        condition |= Q(state__in=others)
    queryset = visibility.visible_cases(user).filter(condition)
    return _with_list_relations(queryset).order_by("step_due_at", "step_started_at", "pk")


# What a case table shows, read as tuples: a page of cases then costs no Case, Partner
# or User objects, which was most of My work's time at scale.
LIST_COLUMNS = (
    "pk",
    "state",
    "step_due_at",
    "offboard_date",
    "partner__display_name",
    "partner__cam__username",
    "partner__cam__first_name",
    "partner__cam__last_name",
)


@dataclass(frozen=True, slots=True)
class CaseRow:
    pk: int
    partner_name: str
    cam_name: str
    state_label: str
    lane_label: str
    due: str  # in the organisation's time zone, "" when the case has no step due
    overdue: bool
    offboard_date: str


def case_rows(page_ids, ordering) -> list[CaseRow]:
    """The table rows of a page of cases, in `ordering`: one query.

    `page_ids` are the page's case ids (a list, or a query of them, as a Paginator's page
    of `values_list("pk")` holds): the names are joined for the page's rows only."""
    now = timezone.now()
    labels = {}
    rows = []
    values = Case.objects.filter(pk__in=page_ids).order_by(*ordering).values_list(*LIST_COLUMNS)
    for pk, state, due_at, offboard_date, partner, username, first, last in values:
        if state not in labels:
            step = step_for_state(state)
            labels[state] = (str(CaseState(state).label), str(step.lane.label) if step else "")
        state_label, lane_label = labels[state]
        rows.append(
            CaseRow(
                pk=pk,
                partner_name=partner,
                cam_name=person_name(username, first, last),
                state_label=state_label,
                lane_label=lane_label,
                due=local_minute(due_at),
                overdue=bool(state in OPEN_STATES and due_at and due_at < now),
                offboard_date=offboard_date.isoformat() if offboard_date else "",
            )
        )
    return rows


CASE_FILTER_STATES = [("open", "Open"), *CaseState.choices]


@dataclass(frozen=True, slots=True)
class Option:
    value: str
    label: str
    selected: bool


def _options(choices, chosen) -> list[Option]:
    return [Option(str(value), str(label), str(value) == chosen) for value, label in choices]


def case_filter_options(user, *, state, lane, cam_id) -> dict:
    """The case list's filter choices with their labels read once (not per option)."""
    options = {
        "state_options": _options(CASE_FILTER_STATES, state),
        "lane_options": _options(((item.value, item.label) for item in Lane), lane),
        "cam_options": [],
    }
    if access.sees_all_cases(user):
        options["cam_options"] = _options(
            ((pk, person_name(username, first, last)) for pk, username, first, last in cams()),
            str(cam_id or ""),
        )
    return options


def cams():
    """Every user in the CAM role, by username: (pk, username, first_name, last_name).

    A user belongs to a group once, so the join through the groups gives each CAM one row."""
    return (
        get_user_model()
        .objects.filter(groups__name=Role.CAM)
        .order_by("username")
        .values_list("pk", "username", "first_name", "last_name")
    )


def case_list(user, *, state="", lane="", cam_id=None, overdue=False, search=""):
    queryset = visibility.visible_cases(user)
    # "Open" is spelt as the open-case indexes' condition (not done, not withdrawn), so
    # PostgreSQL can answer from them alone.
    if state == "open":
        queryset = queryset.exclude(state__in=CLOSED_STATES)
    elif state:
        queryset = queryset.filter(state=state)
    if lane:
        queryset = queryset.filter(state__in=[s.state for s in STEPS if s.lane == lane])
    if cam_id:
        queryset = queryset.filter(partner__cam_id=cam_id)
    if overdue:
        queryset = queryset.exclude(state__in=CLOSED_STATES).filter(step_due_at__lt=timezone.now())
    if search:
        queryset = queryset.filter(
            Q(partner__display_name__icontains=search)
            | Q(partner__legal_name__icontains=search)
            | Q(partner__record_id__iexact=search)
        )
    return _with_list_relations(queryset).order_by("-opened_at", "-pk")


def case_detail(user, pk):
    """The case `pk` for `user`, with `history_length` (how many events its history has) and
    `has_pending_override` (whether an override of it waits for a second CAR user)."""
    from payouts.models import GuardOverride, OverrideStatus

    pending = GuardOverride.objects.filter(case=OuterRef("pk"), status=OverrideStatus.PENDING)
    return visibility.get_case_for(
        user,
        pk,
        Case.objects.select_related("partner", "partner__cam", "opened_by").annotate(
            history_length=_history_length(), has_pending_override=Exists(pending)
        ),
    )


def _history_length():
    # Events are only ever appended, each at the next position (offboarding.case_chain), so
    # the last position names the whole history: the case page's cached parts are keyed on
    # it. The (case, position) constraint's index reads it without a sort.
    return Subquery(
        CaseEvent.objects.filter(case=OuterRef("pk")).order_by("-position").values("position")[:1]
    )


def history_length(case) -> int:
    """`case.history_length` when the case came from case_detail; else read (one query)."""
    if hasattr(case, "history_length"):
        return case.history_length
    return (
        CaseEvent.objects.filter(case=case)
        .order_by("-position")
        .values_list("position", flat=True)
        .first()
    )


# The case page shows the latest events; "Show the whole history" (?history=all) shows all.
HISTORY_SHOWN = 25

EVENT_KIND_LABELS = dict(EventKind.choices)
STEP_HEADINGS = {step.number: f"Step {step.number} · {step.title}" for step in STEPS}
EVENT_COLUMNS = (
    "pk",
    "kind",
    "step_number",
    "from_state",
    "to_state",
    "created_at",
    "due_at",
    "note",
    "actor__username",
    "actor__first_name",
    "actor__last_name",
    "evidence__pk",
    "evidence__original_name",
    "evidence__size",
)


# ---- money in the history (issue 15: one rule, `access.can_read_money`) ----

# Whoever may not read the final statement sees no payment line anywhere: not on the case
# page, not in its history, not in the case record's ZIP. A payment's event and a ledger
# change (a payout voided or created, an order resolved, an override asked or decided) are
# money through and through; a step's event keeps what the person decided and loses the
# figures the service stored with it (the open balance at step 7, the statement at step 9).
MONEY_EVENT_KINDS = frozenset({EventKind.PAYMENT_RECORDED, EventKind.LEDGER_CHANGED})
MONEY_DATA_KEYS = frozenset({"open_balance", "statement"})
MONEY_WITHHELD = (
    "Amounts and references are shown to users who may read payouts (CAR and partner-ops managers)."
)


def withhold_money(kind, data):
    """`data` of an event of `kind` without its money, and the keys taken out (sorted)."""
    if not isinstance(data, dict):
        return data, []
    if kind in MONEY_EVENT_KINDS:
        return {}, sorted(data)
    withheld = sorted(MONEY_DATA_KEYS.intersection(data))
    if not withheld:
        return data, []
    return {key: value for key, value in data.items() if key not in MONEY_DATA_KEYS}, withheld


@dataclass(frozen=True, slots=True)
class EvidenceLink:
    url: str
    name: str
    size: str  # human-readable


@dataclass(slots=True)
class EventRow:
    """One event of a case, ready to show: the template needs no lookups or filters."""

    pk: int
    kind: str
    step_number: int | None
    created_at: dt.datetime
    actor_username: str
    heading: str = ""  # "Step 5 · Update the partner record", or the kind of event
    is_payment: bool = False
    when: str = ""  # created_at in the current time zone, "YYYY-MM-DD HH:MM"
    actor_name: str = ""
    to_state_label: str = ""  # the state the event moved the case to, if it moved it
    late: bool = False
    on_time: bool = False
    items: list = field(default_factory=list)  # (label, value) of the event's data
    money_withheld: bool = False  # money was taken out of `items` (withhold_money)
    note: str = ""
    files: list = field(default_factory=list)  # EvidenceLink


@dataclass
class History:
    events: list  # EventRow, oldest first
    complete: bool  # False when only the latest HISTORY_SHOWN events are in `events`
    step_events: list  # EventRow of every completed step, for the swimlane


def _shown_row(values, data, money: bool) -> EventRow:
    (pk, kind, step_number, from_state, to_state, created_at, due_at, note, username) = values[:9]
    first, last = values[9:11]
    late = bool(due_at and created_at > due_at)
    withheld = []
    if not money:
        data, withheld = withhold_money(kind, data)
    return EventRow(
        pk=pk,
        kind=kind,
        step_number=step_number,
        created_at=created_at,
        actor_username=username,
        heading=(STEP_HEADINGS.get(step_number) if step_number else None)
        or EVENT_KIND_LABELS.get(kind, kind),
        is_payment=kind == EventKind.PAYMENT_RECORDED,
        when=local_minute(created_at),
        actor_name=person_name(username, first, last),
        to_state_label=state_label(to_state) if to_state and to_state != from_state else "",
        late=late,
        on_time=bool(due_at) and not late,
        items=[(field_label(key), field_value(value, key) or "—") for key, value in data.items()]
        if isinstance(data, dict)
        else [],
        money_withheld=bool(withheld),
        note=note,
    )


def case_history(case, *, money: bool, everything: bool = False) -> History:
    """The case's events, oldest first: all of them, or the latest HISTORY_SHOWN of a long
    history, and every completed step (for the swimlane), with their evidence files.
    Without `money` (`access.can_read_money` of the reader) the events' money is withheld.

    One query whatever the length of the history: the latest events and the completed steps,
    joined to their evidence (one row per file). The stored data (a step 7 decision keeps the
    whole open balance) is read only for the events shown.
    """
    events = CaseEvent.objects.filter(case=case)
    if everything:
        events = events.annotate(shown=Value(True), shown_data=F("data"))
    else:
        latest = Q(pk__in=events.order_by("-created_at", "-pk").values("pk")[: HISTORY_SHOWN + 1])
        events = events.filter(latest | Q(kind=EventKind.STEP_COMPLETED)).annotate(
            shown=Switch(When(latest, then=Value(True)), default=Value(False)),
            shown_data=Switch(When(latest, then=F("data")), default=None),
        )
    rows = events.order_by("created_at", "pk", "evidence__pk").values_list(
        *EVENT_COLUMNS, "shown", "shown_data"
    )
    shown, step_events = [], []
    row = None
    for values in rows:
        *_, file_pk, file_name, file_size, is_shown, data = values
        if row is None or row.pk != values[0]:  # a new event; else another file of this one
            if is_shown:
                row = _shown_row(values, data, money)
                shown.append(row)
            else:  # a completed step older than the events shown: for the swimlane only
                pk, kind, step_number, *_ = values
                row = EventRow(pk, kind, step_number, values[5], values[8])
            if row.kind == EventKind.STEP_COMPLETED:
                step_events.append(row)
        if file_pk is not None and is_shown:
            row.files.append(
                EvidenceLink(
                    reverse("evidence_download", args=[file_pk]),
                    file_name,
                    filesizeformat(file_size),
                )
            )
    complete = everything or len(shown) <= HISTORY_SHOWN
    return History(shown if complete else shown[1:], complete, step_events)


@dataclass(slots=True)
class SwimlaneCell:
    step: object
    status: str  # done, current, upcoming, skipped, cancelled
    event: object = None  # the EventRow that completed the step
    title: str = ""  # "7. Money on the table — done"
    done_at: str = ""  # when the step was completed, "MM-DD HH:MM"
    done_on: str = ""  # the same, "YYYY-MM-DD HH:MM"
    empty = range(0)  # not a run of empty cells (see EmptyCells)


@dataclass(frozen=True, slots=True)
class EmptyCells:
    """Consecutive steps of other lanes in a lane's row: one empty cell for each."""

    empty: range


def _lane_layout():
    """Per lane, the indexes into STEPS of its steps, with the runs of other lanes' steps
    between them as EmptyCells. The process does not change while it runs: built once."""
    layout = []
    for lane in Lane:
        parts, run = [], 0
        for index, step in enumerate(STEPS):
            if step.lane != lane:
                run += 1
                continue
            if run:
                parts.append(EmptyCells(range(run)))
            parts.append(index)
            run = 0
        if run:
            parts.append(EmptyCells(range(run)))
        layout.append((lane, parts))
    return layout


LANE_LAYOUT = _lane_layout()


def swimlane(case, step_events):
    """Five lanes x 13 steps: where the case stands, and who did what when."""
    completed = {
        event.step_number: event
        for event in step_events
        if event.kind == EventKind.STEP_COMPLETED and event.step_number
    }
    current = case.current_step
    furthest = max([*completed, current.number if current else 0])
    cells = []
    for step in STEPS:
        event = completed.get(step.number)
        if event is not None:
            status = "done"
        elif step is current:
            status = "current"
        elif case.state == CaseState.WITHDRAWN:
            status = "cancelled"
        elif step.number < furthest or case.state == CaseState.DONE:
            status = "skipped"
        else:
            status = "upcoming"
        cell = SwimlaneCell(step, status, event, f"{step.number}. {step.title} — {status}")
        if event is not None:
            cell.done_at = timezone.localtime(event.created_at).strftime("%m-%d %H:%M")
            cell.done_on = local_minute(event.created_at)
        cells.append(cell)
    return [
        {"lane": lane, "cells": [cells[p] if isinstance(p, int) else p for p in parts]}
        for lane, parts in LANE_LAYOUT
    ], cells


@dataclass(frozen=True, slots=True)
class PaymentRow:
    paid_on: str  # YYYY-MM-DD
    amount: object
    currency: str
    payout_reference: str
    method_label: str
    reference: str
    recorded_by: str


@dataclass
class CasePayments:
    shown: list  # PaymentRow, newest first
    total: int  # how many payments the case has
    by_user: bool  # whether the user recorded any of them (Decision B's four eyes)


def case_payments(case, user, limit: int) -> CasePayments:
    """The newest `limit` payments recorded on the case, how many there are in all and
    whether `user` recorded one: one query."""
    from payouts.models import Payment, PaymentMethod

    methods = dict(PaymentMethod.choices)
    payments = Payment.objects.filter(case=case)
    rows = list(
        payments.annotate(
            total=Subquery(payments.order_by().values("case").annotate(n=Count("pk")).values("n")),
            by_user=Exists(payments.filter(recorded_by_id=user.pk)),
        )
        # payment_case_newest_idx: the newest `limit` rows are read in order, not sorted.
        .order_by("-paid_on", "-pk")
        .values_list(
            "paid_on",
            "amount",
            "currency",
            "payout__reference",
            "method",
            "reference",
            "recorded_by__username",
            "total",
            "by_user",
        )[:limit]
    )
    return CasePayments(
        [
            PaymentRow(
                paid_on.isoformat(), amount, currency, payout, methods.get(method, method), ref, by
            )
            for paid_on, amount, currency, payout, method, ref, by, _, _ in rows
        ],
        rows[0][-2] if rows else 0,
        bool(rows and rows[0][-1]),
    )
