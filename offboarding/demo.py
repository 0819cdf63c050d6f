"""Demo data for `manage.py seed_demo`: one user per role and partners in every situation.

Cases are advanced through the same services people use, as the role users, so the demo
history is what the application itself would have recorded.
"""

import datetime as dt
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from accounts.roles import Role
from offboarding.money.services import record_payment, resolve_order, roll_up_commissions
from partners.models import Licence, Partner, Portal, ReferralLink, Tier
from payouts.models import Commission, Order, OrderStatus, Payout
from payouts.selectors import open_commissions, open_orders

from . import services
from .models import Initiator, Reason, RequestChannel

# Published in the README ("Demo logins"): the demo users exist to try the app with.
DEMO_PASSWORD = "partnerops-demo"  # noqa: S105

USERS = (
    ("cam", "Casey", "Morgan", Role.CAM),
    ("cam2", "Jordan", "Lee", Role.CAM),
    ("salesops", "Sam", "Ortiz", Role.SALES_OPS),
    ("car", "Riley", "Chen", Role.CAR),
    ("car2", "Avery", "Patel", Role.CAR),
    ("portaladmin", "Pat", "Nguyen", Role.PORTAL_ADMIN),
    ("manager", "Morgan", "Hughes", Role.MANAGER),
)

# (display name, CAM username, portal, tier, open payouts, the demo path)
PARTNERS = (
    ("Northwind Solutions", "cam", Portal.BETA, Tier.PREMIER, 3, "ready"),
    ("Bluebird Accounting", "cam", Portal.LEGACY, Tier.MEMBER, 0, "ready"),
    ("Cedar Ledger Partners", "cam", Portal.BETA, Tier.ADVANCED, 0, "ready"),
    ("Delta Bookkeeping", "cam2", Portal.LEGACY, Tier.ADVANCED, 2, "ready"),
    ("Evergreen Advisors", "cam", Portal.LEGACY, Tier.MEMBER, 1, "ready"),
    ("Falcon Tax Services", "cam", Portal.LEGACY, Tier.MEMBER, 0, "at_step_4"),
    ("Granite CPA Group", "cam2", Portal.BETA, Tier.PREMIER, 1, "at_step_5"),
    ("Harbor Finance", "cam", Portal.LEGACY, Tier.ADVANCED, 0, "at_step_6_legal"),
    ("Ironwood Accounting", "cam", Portal.BETA, Tier.ELITE, 2, "at_step_7"),
    ("Juniper Books", "cam2", Portal.BETA, Tier.ADVANCED, 2, "at_step_9"),
    ("Kestrel Partners", "cam", Portal.BETA, Tier.MEMBER, 0, "at_step_12"),
    ("Lakeside Advisors", "cam2", Portal.LEGACY, Tier.MEMBER, 0, "done"),
    ("Maple Street CPAs", "cam", Portal.LEGACY, Tier.MEMBER, 0, "withdrawn"),
    ("Oakridge Consulting", "cam", Portal.LEGACY, Tier.ADVANCED, 0, "overdue"),
)
FILLER_NAMES = (
    "Pinecrest",
    "Quarry Hill",
    "Redwood",
    "Silverline",
    "Tidewater",
    "Union Square",
    "Valley Forge",
    "Westbrook",
    "Yellowstone",
    "Zephyr",
    "Aspen",
    "Birchwood",
    "Cobalt",
    "Driftwood",
    "Elmstead",
    "Foxglove",
    "Glacier",
    "Hawthorn",
    "Indigo",
    "Jasper",
)


def _user(username, first, last, role):
    user, created = get_user_model().objects.get_or_create(
        username=username,
        defaults={"first_name": first, "last_name": last, "email": f"{username}@example.com"},
    )
    if created:
        user.set_password(DEMO_PASSWORD)
        user.save()
    user.groups.add(Group.objects.get(name=role.value))
    return user


def _partner(index, name, cam, portal, tier, payouts):
    slug = name.lower().replace(" ", "-")
    partner, created = Partner.objects.get_or_create(
        record_id=f"QB-{1000 + index}",
        defaults={
            "legal_name": f"{name} LLC",
            "display_name": name,
            "crm_account_id": f"SF-{5000 + index}",
            "portal_partner_id": f"PS-{9000 + index}" if portal == Portal.BETA else "",
            "email": f"partners@{slug}.example",
            "cam": cam,
            "portal": portal,
            "tier": tier,
            "joined_on": dt.date(2019, 1, 1) + dt.timedelta(days=37 * index),
        },
    )
    if not created:
        return partner, False
    Licence.objects.create(
        partner=partner, sku="RPM-0", product_name="Reseller Premier Membership", is_membership=True
    )
    Licence.objects.create(partner=partner, sku="QBA-1", product_name="Accountant Desktop")
    # Referral links live in the beta portal (PartnerStack); legacy partners have none.
    for n in range(2 if portal == Portal.BETA else 0):
        ReferralLink.objects.create(
            partner=partner,
            code=f"{slug}-{n + 1}",
            target_url=f"https://portal.example/r/{slug}-{n + 1}",
        )
    if payouts >= 2:
        Commission.objects.create(
            partner=partner,
            source="portal",
            reference=f"CM-{1000 + index}-1",
            period_start=dt.date(2026, 9, 1),
            period_end=dt.date(2026, 9, 30),
            earned_on=dt.date(2026, 10, 5),
            amount=Decimal("310.25"),
            currency="USD",
        )
        Order.objects.create(
            partner=partner,
            reference=f"OR-{1000 + index}-1",
            ordered_on=dt.date(2026, 11, 2),
            amount=Decimal("89.90"),
            currency="USD",
        )
    for n in range(payouts):
        Payout.objects.create(
            partner=partner,
            reference=f"PO-{1000 + index}-{n + 1}",
            description=f"Commission Q{n % 4 + 1}",
            amount=Decimal("125.50") * (n + 1) + Decimal(index),
            currency="EUR" if n == 2 else "USD",
            earned_on=dt.date(2026, 1, 15) + dt.timedelta(days=30 * n),
        )
    return partner, True


def request_data(*, company: bool, received_on: dt.date) -> dict:
    """Step 1's data: a company-initiated or a partner-initiated request."""
    return {
        "initiated_by": Initiator.COMPANY if company else Initiator.PARTNER,
        "reason": Reason.REVENUE_MINIMUM if company else Reason.BUSINESS_CHANGE,
        "reason_detail": "",
        "request_received_on": received_on,
        "request_channel": RequestChannel.INTERNAL_REVIEW if company else RequestChannel.EMAIL,
    }


def step_data(case, *, legal: bool = False) -> dict:
    """Valid data for the case's active step, as its form would deliver it."""
    build = _STEP_DATA.get(case.current_step.transition)
    return build(case, timezone.localdate(), legal) if build else {}


def step_evidence(case, *, legal: bool = False) -> list:
    """The files the case's active step needs (step_rules): legal action's documents."""
    if legal and case.current_step.transition == "record_company_removal":
        return [ContentFile(b"Demo: the legal action's filing.", name="legal-action.txt")]
    return []


def _codes(case) -> list[str]:
    return list(case.partner.referral_links.values_list("code", flat=True))


# By the Case transition each step names (process.Step.transition); the others need none.
_STEP_DATA = {
    "record_company_removal": lambda case, today, legal: {
        "legal_action": legal,
        "notice_date": today - dt.timedelta(days=1),
    },
    "record_resignation": lambda case, today, legal: {
        "notice_date": today - dt.timedelta(days=1),
        "notice_channel": "email",
        "requested_exit_date": today + dt.timedelta(days=45),
    },
    "update_partner_record": lambda case, today, legal: {
        f"{item}_reference": f"QB-TICKET-{case.partner_id}"
        for item in ("status_reason", "opted_out", "distribution_group", "landing_pages")
    },
    "suspend_membership_licence": lambda case, today, legal: {
        "licence": case.partner.licences.get(is_membership=True)
    },
    "assess_money_on_table": lambda case, today, legal: {
        "money_on_table": case.money_on_the_table()
    },
    "confirm_portal": lambda case, today, legal: {"portal": case.partner.portal},
    "deactivate_referral_links": lambda case, today, legal: {
        "links_deactivated": len(codes := _codes(case)),
        "link_codes": codes,
    },
}


def settle_everything(case, car_user) -> None:
    """Step 8 as CAR does it: close open orders (earning their commission), turn open
    commissions into payouts, and pay every outstanding payout in full."""
    for order in open_orders(case.partner):
        resolve_order(
            actor=car_user, case_id=case.pk, order_id=order.pk, outcome=OrderStatus.CLOSED
        )
    if open_commissions(case.partner).exists():
        roll_up_commissions(actor=car_user, case_id=case.pk)
    for payout in case.outstanding_payouts():
        record_payment(
            actor=car_user,
            case_id=case.pk,
            payout_id=payout.pk,
            amount=payout.remaining,
            paid_on=timezone.localdate(),
            reference=f"ACH-{payout.reference}",
        )


def drive(case, *, until: str, actors: dict, legal: bool = False):
    """Advance `case` through the services, each step by its lane's user, until its state is
    `until` (a state name) or it is closed. CAR's first user pays; the second verifies."""
    lane_actor = {
        "partner": case.partner.cam,
        "cam": case.partner.cam,
        "sales_ops": actors["salesops"],
        "car": actors["car"],
        "portal_admin": actors["portaladmin"],
    }
    while case.current_step and case.state != until:
        step = case.current_step
        if step.ledger:
            settle_everything(case, actors["car"])
        # Decision B: the second CAR user verifies what the first paid.
        actor = actors["car2"] if step.four_eyes else lane_actor[step.lane.value]
        case = services.complete_step(
            actor=actor,
            case_id=case.pk,
            step_number=step.number,
            expected_state=case.state,
            data=step_data(case, legal=legal),
            evidence=step_evidence(case, legal=legal),
        )
    return case


DEMO_STOPS = {
    "at_step_4": "step_4",
    "at_step_5": "step_5",
    "at_step_6_legal": "step_6",
    "at_step_7": "step_7",
    "at_step_9": "step_9",
    "at_step_12": "step_12",
    "done": "done",
}


def _demo_case(partner, path, users):
    company = path in ("at_step_5", "at_step_6_legal", "overdue", "done")
    case = services.open_case(
        actor=partner.cam,
        partner_id=partner.pk,
        data=request_data(company=company, received_on=timezone.localdate() - dt.timedelta(days=2)),
        note="Seeded demo case.",
    )
    if path == "withdrawn":
        return services.withdraw_case(
            actor=partner.cam,
            case_id=case.pk,
            expected_state=case.state,
            reason="Partner rescinded the resignation after a call.",
        )
    if path == "overdue":
        return case
    return drive(case, until=DEMO_STOPS[path], actors=users, legal=path == "at_step_6_legal")


@transaction.atomic
def seed(stdout=None):
    users = {username: _user(username, first, last, role) for username, first, last, role in USERS}
    admin = users.setdefault("admin", _user("admin", "Ada", "Admin", Role.MANAGER))
    if not admin.is_superuser:
        admin.is_staff = admin.is_superuser = True
        admin.save(update_fields=["is_staff", "is_superuser"])
    created_cases = 0
    for index, (name, cam, portal, tier, payouts, path) in enumerate(PARTNERS):
        partner, created = _partner(index, name, users[cam], portal, tier, payouts)
        if created and path != "ready":
            case = _demo_case(partner, path, users)
            created_cases += 1
            if path == "overdue":
                # As if opened 10 days ago and left untouched: its step is long overdue.
                past = timezone.now() - dt.timedelta(days=10)
                type(case).objects.filter(pk=case.pk).update(
                    opened_at=past,
                    step_started_at=past,
                    step_remind_at=past + dt.timedelta(hours=20),
                    step_due_at=past + dt.timedelta(days=1),
                )
    for offset, name in enumerate(FILLER_NAMES):
        index = len(PARTNERS) + offset
        cam = users["cam"] if offset % 2 else users["cam2"]
        _partner(
            index,
            f"{name} Partners",
            cam,
            Portal.BETA if offset % 3 == 0 else Portal.LEGACY,
            list(Tier)[offset % 4],
            offset % 3,
        )
    if stdout:
        stdout.write(f"Demo data ready ({created_cases} new cases).")
    return created_cases
