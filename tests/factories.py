"""Factories. `CaseFactory` reaches each state through the real services, one trait per state."""

import datetime as dt
import itertools
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone

from offboarding import services
from offboarding.demo import drive, request_data
from offboarding.models import Case
from partners.models import Licence, Partner, Portal, ReferralLink
from payouts.models import Payout

_seq = itertools.count(1)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password("pw")

    @factory.post_generation
    def role(self, create, extracted, **kwargs):
        if extracted:
            self.groups.add(Group.objects.get(name=extracted.value))


class PartnerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Partner
        skip_postgeneration_save = True

    legal_name = factory.Sequence(lambda n: f"Partner {n} LLC")
    display_name = factory.Sequence(lambda n: f"Partner {n}")
    record_id = factory.Sequence(lambda n: f"QB-T{n:05d}")
    cam = factory.SubFactory(UserFactory)
    portal = Portal.LEGACY

    class Params:
        beta = factory.Trait(portal=Portal.BETA)

    @factory.post_generation
    def systems(self, create, extracted, **kwargs):
        """The membership SKU, as every reseller has, and on the beta portal (where
        referral links live) a referral link."""
        if not create:
            return
        Licence.objects.create(
            partner=self,
            sku="RPM-0",
            product_name="Reseller Premier Membership",
            is_membership=True,
        )
        if self.portal != Portal.BETA:
            return
        ReferralLink.objects.create(
            partner=self,
            code=f"link-{self.record_id.lower()}",
            target_url="https://example.com/r",
        )


class PayoutFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Payout

    partner = factory.SubFactory(PartnerFactory)
    reference = factory.Sequence(lambda n: f"PO-T{n:05d}")
    description = "Commission"
    amount = Decimal("100.00")
    currency = "USD"
    earned_on = dt.date(2026, 1, 31)
    status = "open"
    # A paid payout is fully paid (the database insists).
    paid_amount = factory.LazyAttribute(
        lambda payout: payout.amount if payout.status == "paid" else Decimal("0.00")
    )


class CaseFactory(factory.django.DjangoModelFactory):
    """A case driven through the services to `state` by the `actors` given (the `roles`
    fixture). Traits choose the path: `company`, `legal`, `money` (open payouts), `beta`."""

    class Meta:
        model = Case

    partner = None
    state = "step_2"
    company = True
    legal = False
    money = False
    actors = None

    @classmethod
    def _create(cls, model_class, *, partner, state, company, legal, money, actors, **kwargs):
        if partner is None:
            partner = PartnerFactory(cam=actors["cam"], **kwargs.pop("partner_kwargs", {}))
        if money:
            PayoutFactory(partner=partner, amount=Decimal("250.00"))
            PayoutFactory(partner=partner, amount=Decimal("99.99"), currency="EUR")
        case = services.open_case(
            actor=partner.cam,
            partner_id=partner.pk,
            data=request_data(
                company=company, received_on=timezone.localdate() - dt.timedelta(days=1)
            ),
        )
        if state == "withdrawn":
            return services.withdraw_case(
                actor=partner.cam, case_id=case.pk, expected_state=case.state, reason="Test"
            )
        return drive(case, until=state, actors=actors, legal=legal)
