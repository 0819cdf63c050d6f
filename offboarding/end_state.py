"""What "the partner is gone everywhere we know of" means (Decision C), fact by fact.

A case reaches Done only when every fact holds. Each fact names the step that makes it
true and the lane that owns it, so a refused Done says what is still wrong and who fixes it.
Facts that the closing transition itself establishes (the partner's status, the beta
portal's archive at step 13) are checked after it has run, before anything is saved.
"""

from collections.abc import Callable
from dataclasses import dataclass

from partners.models import LicenceStatus, PartnerStatus, Portal, ReferralLinkStatus

from .process import Lane


@dataclass(frozen=True)
class Fact:
    key: str
    wanted: str  # the end state, in words
    lane: Lane  # the lane whose step makes it true
    step: int
    # True when the fact is established by the transition to Done itself.
    set_on_close: bool
    observed: Callable  # partner -> a sentence saying what is wrong, or "" when it holds


def _record_reason(partner) -> str:
    if partner.status_reason and partner.offboard_date:
        return ""
    return "the partner record has no reason for removal and offboard date"


def _opted_out(partner) -> str:
    return "" if partner.opted_out else "the partner record is not marked opted out"


def _out_of_group(partner) -> str:
    return "" if not partner.in_distribution_group else "the partner is in the distribution group"


def _no_landing_pages(partner) -> str:
    return "" if not partner.landing_page_access else "the partner still has landing-page access"


def _membership_suspended(partner) -> str:
    active = [
        str(licence)
        for licence in partner.licences.all()
        if licence.is_membership and licence.status == LicenceStatus.ACTIVE
    ]
    return f"membership licence {', '.join(active)} is still active" if active else ""


def _links_inactive(partner) -> str:
    active = [
        link.code
        for link in partner.referral_links.all()
        if link.status == ReferralLinkStatus.ACTIVE
    ]
    if not active:
        return ""
    where = ""
    if partner.portal != Portal.BETA:
        # Referral links live on the beta portal: a partner with live links is on it, and
        # its record is wrong. Sales Ops corrects it; the case then takes steps 11-13.
        where = (
            " (the record says the partner is not on the beta portal: Sales Ops corrects "
            "the record's portal, and the case then goes through steps 11-13)"
        )
    return f"{len(active)} referral link(s) still active: {', '.join(active)}{where}"


def _archived(partner) -> str:
    if partner.portal != Portal.BETA or partner.portal_archived_at:
        return ""
    return "the partner's beta-portal account is not archived"


def _offboarded(partner) -> str:
    return "" if partner.status == PartnerStatus.OFFBOARDED else "the partner is not offboarded"


FACTS: tuple[Fact, ...] = (
    Fact(
        "record",
        "reason for removal and offboard date on record",
        Lane.SALES_OPS,
        5,
        False,
        _record_reason,
    ),
    Fact("opted_out", "marked opted out", Lane.SALES_OPS, 5, False, _opted_out),
    Fact(
        "distribution_group",
        "out of the distribution group",
        Lane.SALES_OPS,
        5,
        False,
        _out_of_group,
    ),
    Fact("landing_pages", "no landing-page access", Lane.SALES_OPS, 5, False, _no_landing_pages),
    Fact("membership", "membership SKU suspended", Lane.SALES_OPS, 6, False, _membership_suspended),
    Fact(
        "referral_links",
        "every referral link inactive",
        Lane.PORTAL_ADMIN,
        12,
        False,
        _links_inactive,
    ),
    Fact("portal_archived", "archived on the beta portal", Lane.PORTAL_ADMIN, 13, True, _archived),
    Fact("status", "status offboarded", Lane.CAM, 10, True, _offboarded),
)


@dataclass(frozen=True)
class Gap:
    fact: Fact
    observed: str

    def __str__(self) -> str:
        return (
            f"{self.observed[0].upper()}{self.observed[1:]} — "
            f"{self.fact.lane.label} (step {self.fact.step})"
        )


def gaps(partner, *, before_close: bool) -> list[Gap]:
    """The end-state facts that do not hold for `partner`.

    `before_close`: judge only what earlier steps own, as a transition's condition does;
    otherwise every fact, as after the closing transition has run.
    """
    found = []
    for fact in FACTS:
        if before_close and fact.set_on_close:
            continue
        observed = fact.observed(partner)
        if observed:
            found.append(Gap(fact, observed))
    return found


def refusal(found: list[Gap]) -> str:
    """The message of a refused Done: each fact still wrong and whose lane fixes it."""
    return (
        "The case cannot be done: the partner is not gone everywhere yet. "
        + "; ".join(f"{gap}" for gap in found)
        + "."
    )
