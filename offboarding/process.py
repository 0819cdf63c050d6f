"""The offboarding process, declared once as data.

The 13 steps of the manual procedure (docs/offboarding-process.md) with their lane,
deadline rule and branches. The case state machine and its states (`CaseState`, built from
STEPS), the permission checks, the forms and their rules, the notifications, the case pages,
the swimlane picture and the deadline engine all read this module; nothing else restates
the process. What is particular to a step (four eyes, the money panel, the ledger, the
snapshot its event keeps) is an attribute of its `Step`, never a test of its number
elsewhere; `Step`'s docstring says where each of its parts lives.
"""

from dataclasses import dataclass
from enum import StrEnum

from django.db import models


class Lane(StrEnum):
    PARTNER = "partner"
    CAM = "cam"
    SALES_OPS = "sales_ops"
    CAR = "car"
    PORTAL_ADMIN = "portal_admin"

    @property
    def label(self) -> str:
        return LANE_LABELS[self]


LANE_LABELS = {
    Lane.PARTNER: "Partner",
    Lane.CAM: "CAM",
    Lane.SALES_OPS: "Sales Ops",
    Lane.CAR: "CAR",
    Lane.PORTAL_ADMIN: "Portal admin",
}

# Who performs a lane's steps. Partners do not log in: their CAM records what they did.
LANE_PERMISSION = {
    Lane.PARTNER: "offboarding.perform_cam_steps",
    Lane.CAM: "offboarding.perform_cam_steps",
    Lane.SALES_OPS: "offboarding.perform_sales_ops_steps",
    Lane.CAR: "offboarding.perform_car_steps",
    Lane.PORTAL_ADMIN: "offboarding.perform_portal_admin_steps",
}
# Lanes whose steps only the partner's own CAM may perform (the source's prerequisite).
OWNER_LANES = frozenset({Lane.PARTNER, Lane.CAM})


class DeadlineRule(StrEnum):
    FIRST_BUSINESS_DAY = "first_business_day"
    SAME_BUSINESS_DAY = "same_business_day"
    NOTICE_PLUS_30 = "notice_plus_30"

    @property
    def label(self) -> str:
        return {
            DeadlineRule.FIRST_BUSINESS_DAY: "end of the 1st business day after",
            DeadlineRule.SAME_BUSINESS_DAY: "same business day",
            DeadlineRule.NOTICE_PLUS_30: "notice + 30 calendar days",
        }[self]


NOTICE_PERIOD_DAYS = 30


@dataclass(frozen=True)
class Branch:
    key: str
    label: str
    target: int | None  # the next step's number; None means the case is done


@dataclass(frozen=True)
class Step:
    """One step, and where each of its parts lives.

    - rule and deadline: `deadline` (offboarding/deadlines.py applies it); `rule` names the
      function in offboarding/step_rules.py that checks the step's data, called by its form
      and by `services.complete_step` alike ("" when the form's fields say it all);
    - permission: `lane` (LANE_PERMISSION, OWNER_LANES) and `four_eyes`, judged by
      `access.can_perform_step`; the model's transition asks the same predicate;
    - transition: `transition` names the `Case` method (offboarding/models.py) that completes
      the step, its source state `state` and its targets `branches`;
    - page: every step is performed on the case page (views.case_detail, its current-step
      part in pages.py, posting to views.complete_step) with the form class `form` names in
      offboarding/forms.py; step 1 is the start page (views.start_offboarding).
    """

    number: int
    lane: Lane
    title: str
    summary: str
    deadline: DeadlineRule
    branches: tuple[Branch, ...]
    transition: str  # the Case method that completes this step
    evidence: str
    short_label: str  # the state's label after its number (lists, filters, the console)
    form: str  # the StepForm subclass in offboarding/forms.py
    rule: str = ""  # the function in offboarding/step_rules.py that checks the data
    # Decision B: performed by a lane member who recorded no payment on the case.
    four_eyes: bool = False
    # The case page shows the open balance and the payments while the case is here.
    money_panel: bool = False
    # CAR changes the ledger for the case here: payments, voids, orders, roll-ups
    # (offboarding/money/services.py); their events carry this step's number.
    ledger: bool = False
    # The transition's condition is that nothing is outstanding; refusals say what is.
    settles_money: bool = False
    # Completing it fixes the offboard date, from which the payment guard applies.
    sets_offboard_date: bool = False
    # What the completion event keeps besides the form's data (services._SNAPSHOTS).
    snapshot: str = ""
    # The notifications.NotificationKind value telling the performers it is theirs.
    notification_kind: str = "step_assigned"

    @property
    def state(self) -> str:
        return state_for(self.number)

    @property
    def state_label(self) -> str:
        return f"{self.number} · {self.short_label}"

    @property
    def has_choice(self) -> bool:
        return len(self.branches) > 1

    def branch(self, key: str) -> Branch:
        for branch in self.branches:
            if branch.key == key:
                return branch
        raise KeyError(f"Step {self.number} has no branch {key!r}")


def _next(target: int | None, label: str = "Continue") -> tuple[Branch, ...]:
    return (Branch("next", label, target),)


STEPS: tuple[Step, ...] = (
    Step(
        1,
        Lane.PARTNER,
        "Request to leave the program",
        "Record who asked for the partner to leave, why, and when the request was received.",
        DeadlineRule.FIRST_BUSINESS_DAY,
        (
            Branch("company", "The company asks the partner to leave (involuntary)", 2),
            Branch("partner", "The partner asked to leave (voluntary)", 3),
        ),
        transition="record_request",
        evidence="who initiated, reason, date received, channel",
        short_label="Request to leave",
        form="RequestForm",
        rule="request_to_leave",
    ),
    Step(
        2,
        Lane.CAM,
        "Company-initiated removal",
        "Decide whether legal action is required; otherwise send the 30-day end-of-date notice.",
        DeadlineRule.FIRST_BUSINESS_DAY,
        (
            Branch("notice", "No legal action: 30-day notice sent", 4),
            Branch("legal", "Legal action recorded with supporting documents", 5),
        ),
        transition="record_company_removal",
        evidence="legal documents, or the notice's date sent and end date",
        short_label="Company-initiated removal",
        form="CompanyRemovalForm",
        rule="company_removal",
        sets_offboard_date=True,
    ),
    Step(
        3,
        Lane.PARTNER,
        "Partner announces resignation",
        "Record the partner's formal resignation, given at least 30 days in advance.",
        DeadlineRule.FIRST_BUSINESS_DAY,
        _next(4),
        transition="record_resignation",
        evidence="notice date, channel, requested exit date, the email or a note",
        short_label="Resignation",
        form="ResignationForm",
        rule="resignation",
        sets_offboard_date=True,
    ),
    Step(
        4,
        Lane.CAM,
        "Hand off to Sales Ops",
        "Confirm that Sales Ops knows about the offboarding (the system has notified them).",
        DeadlineRule.SAME_BUSINESS_DAY,
        _next(5),
        transition="confirm_sales_ops_handoff",
        evidence="the CAM's confirmation",
        short_label="Hand off to Sales Ops",
        form="HandoffForm",
    ),
    Step(
        5,
        Lane.SALES_OPS,
        "Update the partner record",
        "5A status and reason with offboard date; 5B opted out; 5C remove from the "
        "distribution group; 5D remove landing-page access.",
        DeadlineRule.SAME_BUSINESS_DAY,
        _next(6),
        transition="update_partner_record",
        evidence="checklist 5A-5D with a reference for each",
        short_label="Update partner record",
        form="PartnerRecordForm",
    ),
    Step(
        6,
        Lane.SALES_OPS,
        "Cancel the reseller licence",
        "Set the $0 membership SKU from active to suspended in the CRM.",
        DeadlineRule.SAME_BUSINESS_DAY,
        _next(7),
        transition="suspend_membership_licence",
        evidence="licence/SKU and its new status",
        short_label="Cancel licence",
        form="LicenceForm",
        rule="membership_licence",
    ),
    Step(
        7,
        Lane.CAR,
        "Money on the table?",
        "Check open commissions, open orders and pending payouts for this partner.",
        DeadlineRule.SAME_BUSINESS_DAY,
        (
            Branch("yes", "Yes: money is owed, pay it out", 8),
            Branch("no", "No: nothing is owed", 10),
        ),
        transition="assess_money_on_table",
        evidence="the open balance and its lines, CAR's confirmation",
        short_label="Money on the table?",
        form="MoneyOnTableForm",
        rule="money_on_table",
        money_panel=True,
        snapshot="open_balance",
    ),
    Step(
        8,
        Lane.CAR,
        "Pay out and close",
        "Pay and close every open and pending payout.",
        DeadlineRule.NOTICE_PLUS_30,
        _next(9, "All payouts paid or voided"),
        transition="close_payouts",
        evidence="each payment: amount, date, reference",
        short_label="Pay out and close",
        form="ClosePayoutsForm",
        money_panel=True,
        ledger=True,
        settles_money=True,
    ),
    Step(
        9,
        Lane.CAR,
        "Verify the last payments",
        "A second CAR member verifies that every open and pending payout is paid.",
        DeadlineRule.NOTICE_PLUS_30,
        _next(10, "Verified"),
        transition="verify_payouts",
        evidence="verifier (not the payer), result",
        short_label="Verify payments",
        form="VerifyPayoutsForm",
        four_eyes=True,
        money_panel=True,
        settles_money=True,
        snapshot="final_statement",
        notification_kind="payout_to_verify",
    ),
    Step(
        10,
        Lane.CAM,
        "Which partner portal?",
        "Confirm which partner portal the partner is on.",
        DeadlineRule.SAME_BUSINESS_DAY,
        (
            Branch("beta", "On the beta portal: portal admin removes the partner", 11),
            Branch("legacy", "Not on the beta portal: offboarding is done", None),
        ),
        transition="confirm_portal",
        evidence="portal, confirmed by the CAM",
        short_label="Which portal?",
        form="PortalForm",
        rule="portal_follows_record",
    ),
    Step(
        11,
        Lane.CAR,
        "Tell the portal admin",
        "Tell the portal admin that the last payment is verified as paid.",
        DeadlineRule.NOTICE_PLUS_30,
        _next(12),
        transition="notify_portal_admin",
        evidence="CAR's confirmation",
        short_label="Tell portal admin",
        form="PortalAdminNoticeForm",
    ),
    Step(
        12,
        Lane.PORTAL_ADMIN,
        "Deactivate referral links",
        "Deactivate the partner's referral links so clients can no longer use them.",
        DeadlineRule.NOTICE_PLUS_30,
        _next(13),
        transition="deactivate_referral_links",
        evidence="links deactivated (count and codes)",
        short_label="Deactivate links",
        form="DeactivateLinksForm",
    ),
    Step(
        13,
        Lane.PORTAL_ADMIN,
        "Confirm removal",
        "Remove the partner from the program: the portal archives profile and history.",
        DeadlineRule.NOTICE_PLUS_30,
        _next(None, "Confirm removal"),
        transition="confirm_removal",
        evidence="confirmation",
        short_label="Confirm removal",
        form="ConfirmRemovalForm",
    ),
)

STEP_BY_NUMBER = {step.number: step for step in STEPS}
# The step at which CAR pays, voids and resolves for a case (offboarding/money/services.py).
LEDGER_STEP = next(step for step in STEPS if step.ledger)


def state_for(step_number: int) -> str:
    return f"step_{step_number}"


# The case's states: one per step, labelled from the step, then the two closed ones. The
# member names (CaseState.STEP_8) and values ("step_8") are what the migrations hold.
CaseState = models.TextChoices(
    "CaseState",
    [(f"STEP_{step.number}", (step.state, step.state_label)) for step in STEPS]
    + [("DONE", ("done", "Done")), ("WITHDRAWN", ("withdrawn", "Withdrawn"))],
)


OPEN_STATES = tuple(step.state for step in STEPS)
CLOSED_STATES = (CaseState.DONE.value, CaseState.WITHDRAWN.value)
# A case may be withdrawn until step 5 is completed; after that the partner has been
# removed from systems and the case must run to Done.
WITHDRAWABLE_STATES = tuple(state_for(n) for n in range(1, 6))
# Decision C: until step 10's branch is taken, Sales Ops may correct the partner record's
# portal, and the case follows the corrected record.
PORTAL_CORRECTABLE_STATES = tuple(state_for(n) for n in range(1, 11))
CAR_STATES = tuple(step.state for step in STEPS if step.lane == Lane.CAR)


def step_for_state(state: str) -> Step | None:
    if not state.startswith("step_"):
        return None
    return STEP_BY_NUMBER[int(state.removeprefix("step_"))]


def branch_target_state(step: Step, branch_key: str) -> str:
    target = step.branch(branch_key).target
    return CaseState.DONE.value if target is None else state_for(target)


def states_of_lane(lane: Lane) -> tuple[str, ...]:
    return tuple(step.state for step in STEPS if step.lane == lane)


def lanes_performed_with(permission: str) -> tuple[Lane, ...]:
    return tuple(lane for lane, perm in LANE_PERMISSION.items() if perm == permission)
