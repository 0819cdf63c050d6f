"""Reads for the partner pages."""

from dataclasses import dataclass

from django.db.models import BooleanField, CharField, DateTimeField, IntegerField, Value
from django.db.models.functions import Cast
from django.utils import timezone

from core.display import pk_url
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
    url: str
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


LICENCE, LINK, CASE = 0, 1, 2


def partner_records(user, partner) -> PartnerRecords:
    """The partner page's lists: its licences, referral links and the offboarding cases the
    user may see, read as values in one query (UNION ALL of the three) instead of three."""
    text = Value("", output_field=CharField())
    false = Value(False, output_field=BooleanField())
    no_time = Cast(Value(None), DateTimeField())  # typed: a bare NULL would be taken as text

    def kind(number):
        return Value(number, output_field=IntegerField())

    licences = (
        partner.licences.order_by()
        .annotate(kind=kind(LICENCE), at=no_time)
        .values_list("kind", "pk", "product_name", "sku", "is_membership", "status", "at")
    )
    links = (
        partner.referral_links.order_by()
        .annotate(kind=kind(LINK), text=text, flag=false, at=no_time)
        .values_list("kind", "pk", "code", "text", "flag", "status", "at")
    )
    cases = (
        visibility.visible_cases(user, partner.offboarding_cases.order_by())
        .annotate(kind=kind(CASE), text=text, flag=false)
        .values_list("kind", "pk", "text", "text", "flag", "state", "opened_at")
    )
    # One order for the three, spelt in the first's column names: licences membership first
    # then by product name, links by code (in that column), cases newest first.
    rows = licences.union(links, cases, all=True).order_by(
        "kind", "-is_membership", "product_name", "-at", "-pk"
    )
    found = {LICENCE: [], LINK: [], CASE: []}
    for row in rows:
        found[row[0]].append(row)
    licence_labels = dict(LicenceStatus.choices)
    link_labels = dict(ReferralLinkStatus.choices)
    case_labels = dict(CaseState.choices)
    case_url = pk_url("case_detail")
    return PartnerRecords(
        licences=[
            LicenceLine(name, sku, membership, str(licence_labels.get(status, status)))
            for _, _, name, sku, membership, status, _ in found[LICENCE]
        ],
        links=[
            LinkLine(code, str(link_labels.get(status, status)))
            for _, _, code, _, _, status, _ in found[LINK]
        ],
        cases=[
            CaseLine(
                pk=pk,
                url=case_url(pk),
                state_label=str(case_labels.get(state, state)),
                opened_on=timezone.localdate(opened_at).isoformat(),
                is_open=state not in CLOSED_STATES,
            )
            for _, pk, _, _, _, state, opened_at in found[CASE]
        ],
    )
