"""Reads for the partner pages."""

from dataclasses import dataclass

from django.utils import timezone

from offboarding.process import CLOSED_STATES, CaseState
from partners.models import LicenceStatus, ReferralLinkStatus

from . import visibility


@dataclass(frozen=True, slots=True)
class LicenceLine:
    product_name: str
    sku: str
    is_membership: bool
    status_label: str


@dataclass(frozen=True, slots=True)
class LinkLine:
    code: str
    status_label: str


@dataclass(frozen=True, slots=True)
class CaseLine:
    pk: int
    state_label: str
    opened_on: str
    is_open: bool


@dataclass(frozen=True, slots=True)
class PartnerRecords:
    licences: list[LicenceLine]  # the membership licence first, then by product name
    links: list[LinkLine]  # by code
    cases: list[CaseLine]  # the offboarding cases the user may see, newest first

    @property
    def open_case(self) -> CaseLine | None:
        return next((case for case in self.cases if case.is_open), None)


def partner_records(user, partner) -> PartnerRecords:
    """The partner page's lists: its licences, referral links and the offboarding cases the
    user may see, read as values (three queries, whatever their length)."""
    licence_labels = dict(LicenceStatus.choices)
    link_labels = dict(ReferralLinkStatus.choices)
    case_labels = dict(CaseState.choices)
    licences = partner.licences.order_by("-is_membership", "product_name", "pk").values_list(
        "product_name", "sku", "is_membership", "status"
    )
    links = partner.referral_links.order_by("code", "pk").values_list("code", "status")
    cases = (
        visibility.visible_cases(user, partner.offboarding_cases.all())
        .order_by("-opened_at", "-pk")
        .values_list("pk", "state", "opened_at")
    )
    return PartnerRecords(
        licences=[
            LicenceLine(name, sku, membership, str(licence_labels.get(status, status)))
            for name, sku, membership, status in licences
        ],
        links=[LinkLine(code, str(link_labels.get(status, status))) for code, status in links],
        cases=[
            CaseLine(
                pk=pk,
                state_label=str(case_labels.get(state, state)),
                opened_on=timezone.localdate(opened_at).isoformat(),
                is_open=state not in CLOSED_STATES,
            )
            for pk, state, opened_at in cases
        ],
    )
