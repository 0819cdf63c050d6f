"""Who may see and do what with a case. Every check in views, admin and services is here.

Deny by default: a user sees a case only through `visibility.visible_cases`, and acts on it
only when `can_perform` (a lane's step) or `can_withdraw` says so. These are predicates over
a user and a case; the queries that apply them to the database are in `visibility`.
"""

from .process import (
    LANE_PERMISSION,
    OWNER_LANES,
    PORTAL_CORRECTABLE_STATES,
    WITHDRAWABLE_STATES,
    Lane,
)


def sees_all_cases(user) -> bool:
    return user.is_superuser or user.has_perm("offboarding.view_all_cases")


def owns_partner(user, partner) -> bool:
    return partner.cam_id is not None and partner.cam_id == user.pk


def holds_lane(user, lane: Lane) -> bool:
    return user.is_authenticated and user.is_active and user.has_perm(LANE_PERMISSION[lane])


def can_perform(user, case, lane: Lane) -> bool:
    """May `user` perform a step of `lane` on `case`? Conditions of the step are not judged."""
    if not holds_lane(user, lane):
        return False
    if lane in OWNER_LANES and not user.is_superuser:
        return owns_partner(user, case.partner)
    return True


def can_open_case(user, partner) -> bool:
    if not holds_lane(user, Lane.CAM):
        return False
    return user.is_superuser or owns_partner(user, partner)


def can_withdraw(user, case) -> bool:
    if case.state not in WITHDRAWABLE_STATES:
        return False
    if not (user.is_active and user.has_perm("offboarding.withdraw_case")):
        return False
    return sees_all_cases(user) or owns_partner(user, case.partner)


def can_correct_portal(user, case) -> bool:
    """Sales Ops owns the partner record; its portal may change until step 10 branches."""
    return case.state in PORTAL_CORRECTABLE_STATES and holds_lane(user, Lane.SALES_OPS)


def paid_by(case) -> set[int]:
    """Ids of the users who recorded payments on this case (Decision B's makers)."""
    return set(case.payments.values_list("recorded_by_id", flat=True))


def can_perform_step(user, case, step, payers: set[int] | None = None) -> bool:
    """May `user` complete `step` (a process.Step) on `case`? Its lane's performer, and for
    a four-eyes step (Decision B: step 9, the verifier) one who recorded no payment on the
    case. The step's transition asks this; its conditions are not judged here. `payers`
    may be passed by a caller that has already read the case's payments."""
    if step.four_eyes:
        return can_perform(user, case, step.lane) and user.pk not in (
            paid_by(case) if payers is None else payers
        )
    return can_perform(user, case, step.lane)


def can_read_money(user) -> bool:
    """May `user` read payouts and payments (the final statement)? CAR and partner-ops
    managers. The statement, the console, the reports and the case record's ZIP ask here."""
    return user.is_superuser or user.has_perm("payouts.view_payout")


def can_open_car_console(user) -> bool:
    """The CAR console (and its link in the navigation): CAR, and whoever reads money."""
    return holds_lane(user, Lane.CAR) or can_read_money(user)


def can_decide_override(user, override) -> bool:
    """Decision D, four eyes: a CAR user who did not ask for the override decides on it."""
    return holds_lane(user, Lane.CAR) and override.requested_by_id != user.pk
