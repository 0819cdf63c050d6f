"""The offboarding process, declared once as data.

The 13 steps of the manual procedure (shared/design/offboarding-process.md) with their
lane, deadline rule and branches. The case state machine, the permission checks, the case
pages, the swimlane picture and the deadline engine all read this module; nothing else
restates the process.
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
    number: int
    lane: Lane
    title: str
    summary: str
    deadline: DeadlineRule
    branches: tuple[Branch, ...]
    transition: str  # the Case method that completes this step
    evidence: str

    @property
    def state(self) -> str:
        return state_for(self.number)

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
        "record_request",
        "who initiated, reason, date received, channel",
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
        "record_company_removal",
        "legal documents, or the notice's date sent and end date",
    ),
    Step(
        3,
        Lane.PARTNER,
        "Partner announces resignation",
        "Record the partner's formal resignation, given at least 30 days in advance.",
        DeadlineRule.FIRST_BUSINESS_DAY,
        _next(4),
        "record_resignation",
        "notice date, channel, requested exit date, the email or a note",
    ),
    Step(
        4,
        Lane.CAM,
        "Hand off to Sales Ops",
        "Confirm that Sales Ops knows about the offboarding (the system has notified them).",
        DeadlineRule.SAME_BUSINESS_DAY,
        _next(5),
        "confirm_sales_ops_handoff",
        "the CAM's confirmation",
    ),
    Step(
        5,
        Lane.SALES_OPS,
        "Update the partner record",
        "5A status and reason with offboard date; 5B opted out; 5C remove from the "
        "distribution group; 5D remove landing-page access.",
        DeadlineRule.SAME_BUSINESS_DAY,
        _next(6),
        "update_partner_record",
        "checklist 5A-5D with a reference for each",
    ),
    Step(
        6,
        Lane.SALES_OPS,
        "Cancel the reseller licence",
        "Set the $0 membership SKU from active to suspended in the CRM.",
        DeadlineRule.SAME_BUSINESS_DAY,
        _next(7),
        "suspend_membership_licence",
        "licence/SKU and its new status",
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
        "assess_money_on_table",
        "the open balance and its lines, CAR's confirmation",
    ),
    Step(
        8,
        Lane.CAR,
        "Pay out and close",
        "Pay and close every open and pending payout.",
        DeadlineRule.NOTICE_PLUS_30,
        _next(9, "All payouts paid or voided"),
        "close_payouts",
        "each payment: amount, date, reference",
    ),
    Step(
        9,
        Lane.CAR,
        "Verify the last payments",
        "A second CAR member verifies that every open and pending payout is paid.",
        DeadlineRule.NOTICE_PLUS_30,
        _next(10, "Verified"),
        "verify_payouts",
        "verifier (not the payer), result",
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
        "confirm_portal",
        "portal, confirmed by the CAM",
    ),
    Step(
        11,
        Lane.CAR,
        "Tell the portal admin",
        "Tell the portal admin that the last payment is verified as paid.",
        DeadlineRule.NOTICE_PLUS_30,
        _next(12),
        "notify_portal_admin",
        "CAR's confirmation",
    ),
    Step(
        12,
        Lane.PORTAL_ADMIN,
        "Deactivate referral links",
        "Deactivate the partner's referral links so clients can no longer use them.",
        DeadlineRule.NOTICE_PLUS_30,
        _next(13),
        "deactivate_referral_links",
        "links deactivated (count and codes)",
    ),
    Step(
        13,
        Lane.PORTAL_ADMIN,
        "Confirm removal",
        "Remove the partner from the program: the portal archives profile and history.",
        DeadlineRule.NOTICE_PLUS_30,
        _next(None, "Confirm removal"),
        "confirm_removal",
        "confirmation",
    ),
)

STEP_BY_NUMBER = {step.number: step for step in STEPS}


def state_for(step_number: int) -> str:
    return f"step_{step_number}"


class CaseState(models.TextChoices):
    STEP_1 = "step_1", "1 · Request to leave"
    STEP_2 = "step_2", "2 · Company-initiated removal"
    STEP_3 = "step_3", "3 · Resignation"
    STEP_4 = "step_4", "4 · Hand off to Sales Ops"
    STEP_5 = "step_5", "5 · Update partner record"
    STEP_6 = "step_6", "6 · Cancel licence"
    STEP_7 = "step_7", "7 · Money on the table?"
    STEP_8 = "step_8", "8 · Pay out and close"
    STEP_9 = "step_9", "9 · Verify payments"
    STEP_10 = "step_10", "10 · Which portal?"
    STEP_11 = "step_11", "11 · Tell portal admin"
    STEP_12 = "step_12", "12 · Deactivate links"
    STEP_13 = "step_13", "13 · Confirm removal"
    DONE = "done", "Done"
    WITHDRAWN = "withdrawn", "Withdrawn"


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
