"""The offboarding case: a state machine that mirrors the 13-step swimlane.

Each step's completion is a transition declared here, with the lane's permission and the
side effects it has on the partner register. Transitions are called only by
`offboarding.services`, which locks the case, checks the actor, saves and records the event.
"""

import datetime as dt

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django_fsm import RETURN_VALUE, ConcurrentTransitionMixin, FSMField, transition

from partners.models import LicenceStatus, Portal, ReferralLinkStatus

from . import access, end_state
from .process import (
    CAR_STATES,
    CLOSED_STATES,
    NOTICE_PERIOD_DAYS,
    STEP_BY_NUMBER,
    WITHDRAWABLE_STATES,
    CaseState,
    branch_target_state,
    step_for_state,
)


class Initiator(models.TextChoices):
    COMPANY = "company", "The company asks the partner to leave"
    PARTNER = "partner", "The partner asked to leave"


class Reason(models.TextChoices):
    REVENUE_MINIMUM = "revenue_minimum", "Revenue minimum not met"
    INACTIVITY = "inactivity", "Inactive partner"
    COMPLIANCE = "compliance", "Compliance or policy breach"
    CONTRACT_BREACH = "contract_breach", "Breach of contract"
    BUSINESS_CHANGE = "business_change", "Partner's business changed or closed"
    ACQUIRED = "acquired", "Partner acquired or merged"
    OTHER_PROGRAM = "other_program", "Partner moving to another program"
    OTHER = "other", "Other (see detail)"


class RequestChannel(models.TextChoices):
    EMAIL = "email", "Email"
    CONVERSATION = "conversation", "Conversation (call or meeting)"
    LETTER = "letter", "Letter"
    INTERNAL_REVIEW = "internal_review", "Internal review"


def _may_perform(step_number: int):
    """The transition's permission: who may perform the step (its lane, four eyes), as
    `access.can_perform_step` judges from process.STEPS."""
    step = STEP_BY_NUMBER[step_number]

    def check(case, user) -> bool:
        return access.can_perform_step(user, case, step)

    check.__name__ = f"can_perform_step_{step_number}"
    return check


def _can_withdraw(case, user) -> bool:
    return access.can_withdraw(user, case)


def _nothing_outstanding(case) -> bool:
    return not case.money_on_the_table()


def _gone_everywhere(case) -> bool:
    """Decision C: what earlier steps own holds (end_state.FACTS), so Done may follow."""
    return not end_state.gaps(case.partner, before_close=True)


def _gone_everywhere_unless_beta(case) -> bool:
    """Step 10 closes the case only off the beta portal; on it, steps 11-13 follow."""
    return case.partner.portal == Portal.BETA or _gone_everywhere(case)


class Case(ConcurrentTransitionMixin, models.Model):
    partner = models.ForeignKey(
        "partners.Partner", on_delete=models.PROTECT, related_name="offboarding_cases"
    )
    state = FSMField(
        max_length=20, choices=CaseState.choices, default=CaseState.STEP_1, protected=True
    )
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="opened_cases"
    )
    opened_at = models.DateTimeField(default=timezone.now)
    closed_at = models.DateTimeField(null=True, blank=True)

    # Step 1
    initiated_by = models.CharField(max_length=10, choices=Initiator.choices)
    reason = models.CharField(max_length=30, choices=Reason.choices)
    reason_detail = models.TextField(blank=True)
    request_received_on = models.DateField()
    request_channel = models.CharField(max_length=20, choices=RequestChannel.choices)
    # Steps 2 and 3
    legal_action = models.BooleanField(null=True, blank=True)
    notice_date = models.DateField(null=True, blank=True)
    requested_exit_date = models.DateField(null=True, blank=True)
    offboard_date = models.DateField(null=True, blank=True)
    # Steps 7 and 10
    money_on_table = models.BooleanField(null=True, blank=True)
    portal = models.CharField(max_length=10, choices=Portal.choices, blank=True)
    withdrawal_reason = models.TextField(blank=True)

    # The active step: when it became active, when it falls due, when to remind (UTC),
    # and whether the deadline sweep has reminded and escalated it (each claimed once).
    step_started_at = models.DateTimeField(default=timezone.now)
    step_due_at = models.DateTimeField(null=True, blank=True)
    step_remind_at = models.DateTimeField(null=True, blank=True)
    step_reminded_at = models.DateTimeField(null=True, blank=True)
    step_escalated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-opened_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["partner"],
                condition=~Q(state__in=CLOSED_STATES),
                name="one_open_case_per_partner",
                violation_error_message="This partner already has an open offboarding case.",
            ),
        ]
        indexes = [
            models.Index(fields=["state", "step_started_at"]),
            # Overdue open cases, and the ids and opening times the case list pages by.
            models.Index(
                fields=["step_due_at"],
                include=["opened_at", "id"],
                condition=~Q(state__in=CLOSED_STATES),
                name="open_case_due_covering_idx",
            ),
            # My work and the CAM filter reach open cases through the CAM's partners: one
            # probe per partner. The index carries what the table and its order need, so
            # the plan reads no case rows, whatever the planner thinks a row read costs.
            models.Index(
                fields=["partner", "state"],
                include=["id", "step_due_at", "step_started_at", "offboard_date"],
                condition=~Q(state__in=CLOSED_STATES),
                name="open_case_partner_covering_idx",
            ),
            # The CAR console: its queues (steps 7, 8, 9, 11) soonest due first, and their
            # counts, read from an index holding only the cases at CAR's steps.
            models.Index(
                fields=["state", "step_due_at", "id"],
                condition=Q(state__in=CAR_STATES),
                name="car_case_due_idx",
            ),
            # The case list's default view: open cases, newest first, a page at a time.
            models.Index(
                F("opened_at").desc(),
                F("id").desc(),
                condition=~Q(state__in=CLOSED_STATES),
                name="open_case_opened_idx",
            ),
            # The deadline sweep reads only rows still owed a reminder or an escalation, so
            # its cost follows the number of steps falling due, not the number of cases.
            models.Index(
                fields=["step_remind_at"],
                condition=Q(step_reminded_at__isnull=True, step_remind_at__isnull=False),
                name="case_reminder_owed_idx",
            ),
            models.Index(
                fields=["step_due_at"],
                condition=Q(step_escalated_at__isnull=True, step_due_at__isnull=False),
                name="case_escalation_owed_idx",
            ),
        ]
        permissions = [
            ("view_all_cases", "Can see every case, not only those of managed partners"),
            ("perform_cam_steps", "Can perform CAM steps (and record the partner's)"),
            ("perform_sales_ops_steps", "Can perform Sales Ops steps"),
            ("perform_car_steps", "Can perform CAR steps"),
            ("perform_portal_admin_steps", "Can perform portal-admin steps"),
            ("withdraw_case", "Can withdraw a case before step 5 is completed"),
        ]

    def __str__(self):
        return f"Case #{self.pk} · {self.partner}"

    # ---- derived ----
    @property
    def current_step(self):
        return step_for_state(self.state)

    @property
    def is_open(self) -> bool:
        return self.state not in CLOSED_STATES

    @property
    def is_withdrawable(self) -> bool:
        return self.state in WITHDRAWABLE_STATES

    @property
    def is_overdue(self) -> bool:
        return bool(self.is_open and self.step_due_at and self.step_due_at < timezone.now())

    @property
    def days_to_offboard(self) -> int | None:
        if not self.offboard_date or not self.is_open:
            return None
        return (self.offboard_date - timezone.localdate()).days

    def outstanding_payouts(self):
        from payouts.selectors import outstanding_payouts

        return outstanding_payouts(self.partner)

    def money_on_the_table(self) -> bool:
        """Open commissions, open orders or outstanding payouts for the partner."""
        from payouts.selectors import money_on_the_table

        return money_on_the_table(self.partner)

    def _set_notice(self, notice_date: dt.date, requested_exit: dt.date | None = None):
        self.notice_date = notice_date
        earliest = notice_date + dt.timedelta(days=NOTICE_PERIOD_DAYS)
        self.requested_exit_date = requested_exit
        self.offboard_date = max(earliest, requested_exit) if requested_exit else earliest

    def _close(self):
        self.closed_at = timezone.now()
        partner = self.partner
        partner.finish_offboarding(offboard_date=self.offboard_date or timezone.localdate())
        partner.save()

    # ---- the steps ----
    @transition(
        field=state,
        source=CaseState.STEP_1,
        target=RETURN_VALUE(CaseState.STEP_2, CaseState.STEP_3),
        permission=_may_perform(1),
    )
    def record_request(self, *, by, data):
        """Step 1: record who asked for the partner to leave. Company -> 2, partner -> 3."""
        self.initiated_by = data["initiated_by"]
        self.reason = data["reason"]
        self.reason_detail = data.get("reason_detail", "")
        self.request_received_on = data["request_received_on"]
        self.request_channel = data["request_channel"]
        return branch_target_state(STEP_BY_NUMBER[1], self.initiated_by)

    @transition(
        field=state,
        source=CaseState.STEP_2,
        target=RETURN_VALUE(CaseState.STEP_4, CaseState.STEP_5),
        permission=_may_perform(2),
    )
    def record_company_removal(self, *, by, data):
        """Step 2: legal action (documents on the event) -> 5, or 30-day notice sent -> 4.

        Sets the notice and offboard dates (from here the payment guard applies).
        """
        self.legal_action = data["legal_action"]
        self._set_notice(data["notice_date"])
        return branch_target_state(STEP_BY_NUMBER[2], "legal" if self.legal_action else "notice")

    @transition(
        field=state,
        source=CaseState.STEP_3,
        target=CaseState.STEP_4,
        permission=_may_perform(3),
    )
    def record_resignation(self, *, by, data):
        """Step 3: the partner's resignation notice. Sets the notice and offboard dates (from
        here the payment guard applies)."""
        self._set_notice(data["notice_date"], data.get("requested_exit_date"))

    @transition(
        field=state,
        source=CaseState.STEP_4,
        target=CaseState.STEP_5,
        permission=_may_perform(4),
    )
    def confirm_sales_ops_handoff(self, *, by, data):
        """Step 4: the CAM confirms Sales Ops has the hand-off. No other side effects."""

    @transition(
        field=state,
        source=CaseState.STEP_5,
        target=CaseState.STEP_6,
        permission=_may_perform(5),
    )
    def update_partner_record(self, *, by, data):
        """Step 5: writes the partner record: 5A status reason and offboard date, 5B opted
        out, 5C out of the distribution group, 5D no landing-page access."""
        partner = self.partner
        detail = f": {self.reason_detail}" if self.reason_detail else ""
        partner.status_reason = f"{self.get_reason_display()}{detail}"[:300]
        partner.offboard_date = self.offboard_date
        partner.opted_out = True
        partner.in_distribution_group = False
        partner.landing_page_access = False
        partner.save()

    @transition(
        field=state,
        source=CaseState.STEP_6,
        target=CaseState.STEP_7,
        permission=_may_perform(6),
    )
    def suspend_membership_licence(self, *, by, data):
        """Step 6: suspends the chosen $0 membership licence in the CRM."""
        licence = data["licence"]
        licence.status = LicenceStatus.SUSPENDED
        licence.suspended_at = timezone.now()
        licence.save(update_fields=["status", "suspended_at"])

    @transition(
        field=state,
        source=CaseState.STEP_7,
        target=RETURN_VALUE(CaseState.STEP_8, CaseState.STEP_10),
        permission=_may_perform(7),
    )
    def assess_money_on_table(self, *, by, data):
        """Step 7: money owed -> 8; nothing owed -> 10 (Decision A: never straight to Done)."""
        self.money_on_table = data["money_on_table"]
        return branch_target_state(STEP_BY_NUMBER[7], "yes" if self.money_on_table else "no")

    @transition(
        field=state,
        source=CaseState.STEP_8,
        target=CaseState.STEP_9,
        conditions=[_nothing_outstanding],
        permission=_may_perform(8),
    )
    def close_payouts(self, *, by, data):
        """Step 8: nothing open or pending remains (payouts paid or voided, commissions paid
        out, orders resolved). No other side effects."""

    @transition(
        field=state,
        source=CaseState.STEP_9,
        target=CaseState.STEP_10,
        conditions=[_nothing_outstanding],
        permission=_may_perform(9),
    )
    def verify_payouts(self, *, by, data):
        """Step 9: a CAR user who recorded no payment verifies (Decision B)."""

    @transition(
        field=state,
        source=CaseState.STEP_10,
        target=RETURN_VALUE(CaseState.STEP_11, CaseState.DONE),
        conditions=[_gone_everywhere_unless_beta],
        permission=_may_perform(10),
    )
    def confirm_portal(self, *, by, data):
        """Step 10 (Decision C): the branch follows the partner record's portal, which the
        CAM confirms: beta portal -> 11; otherwise Done, which marks the partner offboarded.
        Done only when the partner is gone everywhere (`_gone_everywhere`)."""
        self.portal = self.partner.portal
        target = branch_target_state(STEP_BY_NUMBER[10], self.portal)
        if target == CaseState.DONE:
            self._close()
        return target

    @transition(
        field=state,
        source=CaseState.STEP_11,
        target=CaseState.STEP_12,
        permission=_may_perform(11),
    )
    def notify_portal_admin(self, *, by, data):
        """Step 11: CAR tells the portal admin the last payment is verified as paid."""

    @transition(
        field=state,
        source=CaseState.STEP_12,
        target=CaseState.STEP_13,
        permission=_may_perform(12),
    )
    def deactivate_referral_links(self, *, by, data):
        """Step 12: deactivates every active referral link of the partner."""
        self.partner.referral_links.filter(status=ReferralLinkStatus.ACTIVE).update(
            status=ReferralLinkStatus.DEACTIVATED, deactivated_at=timezone.now()
        )

    @transition(
        field=state,
        source=CaseState.STEP_13,
        target=CaseState.DONE,
        conditions=[_gone_everywhere],
        permission=_may_perform(13),
    )
    def confirm_removal(self, *, by, data):
        """Step 13: the portal archives the partner (nothing is deleted); the case is Done
        and the partner offboarded."""
        self.partner.portal_archived_at = timezone.now()
        self._close()

    @transition(
        field=state,
        source=WITHDRAWABLE_STATES,
        target=CaseState.WITHDRAWN,
        permission=_can_withdraw,
    )
    def withdraw(self, *, by, data):
        """Withdrawal before step 5 completes: the partner is active again."""
        self.withdrawal_reason = data["reason"]
        self.closed_at = timezone.now()
        partner = self.partner
        partner.resume_membership()
        partner.save()


class EventKind(models.TextChoices):
    OPENED = "opened", "Case opened"
    STEP_COMPLETED = "step_completed", "Step completed"
    PAYMENT_RECORDED = "payment_recorded", "Payment recorded"
    LEDGER_CHANGED = "ledger_changed", "Ledger changed"
    RECORD_CORRECTED = "record_corrected", "Partner record corrected"
    WITHDRAWN = "withdrawn", "Withdrawn"


class ImmutableRowError(Exception):
    pass


class CaseEvent(models.Model):
    """One entry of a case's history. Append-only: never updated, never deleted.

    Tamper-evident: when the row is inserted, `offboarding.case_chain.seal` gives it its
    position in the case's history, the previous event's hash and its own hash (over its
    content, the evidence recorded with it and that previous hash). `verify_case_records`
    and the case record export check the chain.
    """

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="events")
    kind = models.CharField(max_length=20, choices=EventKind.choices)
    step_number = models.PositiveSmallIntegerField(null=True, blank=True)
    from_state = models.CharField(max_length=20, blank=True)
    to_state = models.CharField(max_length=20, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="case_events"
    )
    created_at = models.DateTimeField(default=timezone.now)
    due_at = models.DateTimeField(
        null=True, blank=True, help_text="The deadline the step was completed against."
    )
    data = models.JSONField(default=dict, blank=True)
    note = models.TextField(blank=True)
    # The hash chain (offboarding.case_chain), set once by save() when the row is inserted.
    position = models.PositiveIntegerField(
        editable=False, help_text="The event's place in the case's history: 1, 2, 3, …"
    )
    evidence_digests = models.JSONField(
        default=list,
        blank=True,
        editable=False,
        help_text="Name, size and SHA-256 of each file recorded with the event.",
    )
    previous_hash = models.CharField(max_length=64, editable=False)
    hash = models.CharField(
        max_length=64,
        editable=False,
        help_text="SHA-256 of the event's content and previous_hash (case_chain.HASH_RULE).",
    )

    class Meta:
        ordering = ["created_at", "pk"]
        indexes = [models.Index(fields=["case", "created_at"])]
        constraints = [
            models.UniqueConstraint(
                fields=["case", "position"], name="caseevent_one_event_per_position"
            ),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} · case {self.case_id}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ImmutableRowError("Case events are append-only.")
        from . import case_chain

        case_chain.seal(self)
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ImmutableRowError("Case events are append-only.")

    @property
    def was_late(self) -> bool:
        return bool(self.due_at and self.created_at > self.due_at)

    @property
    def step(self):
        return STEP_BY_NUMBER.get(self.step_number) if self.step_number else None


# File systems take at most 255 bytes a name; the storage may add "_" and 7 characters to
# make a name unique. Longer names are shortened on disk; `original_name` keeps the name.
STORED_NAME_BYTES = 200


def evidence_path(instance, filename):
    return f"evidence/case-{instance.event.case_id}/{instance.event_id}/{stored_name(filename)}"


def stored_name(filename: str) -> str:
    """`filename` cut to STORED_NAME_BYTES of UTF-8 (whole characters), its extension kept."""
    if len(filename.encode()) <= STORED_NAME_BYTES:
        return filename
    stem, dot, extension = filename.rpartition(".")
    if not dot or not stem or len(extension) > 10:
        stem, extension = filename, ""
    else:
        extension = "." + extension
    room = STORED_NAME_BYTES - len(extension.encode())
    return stem.encode()[:room].decode(errors="ignore") + extension


class EvidenceFile(models.Model):
    event = models.ForeignKey(CaseEvent, on_delete=models.PROTECT, related_name="evidence")
    file = models.FileField(upload_to=evidence_path, max_length=300)
    original_name = models.CharField(max_length=255)
    size = models.PositiveIntegerField()
    uploaded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["pk"]

    def __str__(self):
        return self.original_name

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ImmutableRowError("Evidence is append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ImmutableRowError("Evidence is append-only.")
