"""The partner register: what the 13 offboarding steps read and change.

The source's systems map to fields here: the partner-record system ("QuickBase") holds
status, reason, offboard date, opted-out, distribution group and landing pages; the CRM
("SFDC") holds licences; the partner portal holds referral links and the portal account.
"""

from django.apps import apps
from django.conf import settings
from django.db import models
from django.utils import timezone
from django_fsm import ConcurrentTransitionMixin, FSMField, transition


class PartnerStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    OFFBOARDING = "offboarding", "Offboarding"
    OFFBOARDED = "offboarded", "Offboarded"


class Tier(models.TextChoices):
    MEMBER = "member", "Member"
    ADVANCED = "advanced", "Advanced"
    PREMIER = "premier", "Premier"
    ELITE = "elite", "Elite"


class Portal(models.TextChoices):
    LEGACY = "legacy", "Legacy portal"
    BETA = "beta", "Beta portal"


class Partner(ConcurrentTransitionMixin, models.Model):
    legal_name = models.CharField(max_length=200)
    display_name = models.CharField(max_length=200)
    record_id = models.CharField(
        "partner-record id",
        max_length=40,
        unique=True,
        help_text="Id in the partner-record system.",
    )
    crm_account_id = models.CharField("CRM account id", max_length=40, blank=True)
    portal_partner_id = models.CharField("portal partner id", max_length=40, blank=True)
    email = models.EmailField(blank=True)
    cam = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name="channel account manager",
        on_delete=models.PROTECT,
        related_name="managed_partners",
        null=True,
        blank=True,
    )
    program = models.CharField(max_length=80, default="Reseller Program")
    tier = models.CharField(max_length=20, choices=Tier.choices, default=Tier.MEMBER)
    joined_on = models.DateField(default=timezone.localdate)

    status = FSMField(
        max_length=20, choices=PartnerStatus.choices, default=PartnerStatus.ACTIVE, protected=True
    )
    status_reason = models.CharField(max_length=300, blank=True)
    offboard_date = models.DateField(null=True, blank=True)
    opted_out = models.BooleanField(default=False)
    in_distribution_group = models.BooleanField(default=True)
    landing_page_access = models.BooleanField(default=True)

    portal = models.CharField(max_length=10, choices=Portal.choices, default=Portal.LEGACY)
    portal_archived_at = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["display_name"]
        indexes = [
            models.Index(fields=["cam", "display_name"]),
            # A CAM's partners' ids from the index alone: My work and the CAM's case list
            # join them to the open cases without reading the partner rows.
            models.Index(fields=["cam", "id"], name="partner_cam_ids_idx"),
            models.Index(fields=["status", "display_name"]),
        ]
        permissions = [("view_all_partners", "Can see every partner, not only managed ones")]

    def __str__(self):
        return self.display_name

    @property
    def in_program(self) -> bool:
        return self.status != PartnerStatus.OFFBOARDED

    @transition(field=status, source=PartnerStatus.ACTIVE, target=PartnerStatus.OFFBOARDING)
    def begin_offboarding(self):
        """An offboarding case was opened. No other side effects."""

    @transition(field=status, source=PartnerStatus.OFFBOARDING, target=PartnerStatus.ACTIVE)
    def resume_membership(self):
        """The case was withdrawn before the partner left any system: back to active."""

    @transition(field=status, source=PartnerStatus.OFFBOARDING, target=PartnerStatus.OFFBOARDED)
    def finish_offboarding(self, *, offboard_date):
        """The case is done: the partner has left the program on `offboard_date`."""
        self.offboard_date = offboard_date


class CaseRecordProtected(models.ProtectedError):
    """A licence or referral link of a partner with an offboarding case cannot be deleted."""


def refuse_deleting_records_of_cased_partners(model, partner_ids) -> None:
    """Refuse to delete licences or referral links of a partner that has an offboarding case.

    Licences and referral links are what steps 6 and 12 suspend and deactivate: once the
    partner has a case (open, done or withdrawn), deleting one would erase what the case
    history speaks of, and a deleted link can no longer be shown inactive. So for these rows
    `instance.delete()` and every `QuerySet.delete()` (including `partner.licences.all()`)
    check first and raise `CaseRecordProtected`, a `ProtectedError` naming the case, before
    anything is written: as with a PROTECT foreign key, the caller's transaction stays usable.

    `Licence.partner` and `ReferralLink.partner` stay CASCADE, not PROTECT, so that a partner
    registered by mistake (no case, no ledger line) can still be deleted with its licences
    and links. Deleting a partner *with* a case, payout, payment, commission, order or
    override is refused by those PROTECT foreign keys while Django collects what to delete,
    so a cascade never reaches the licences of a partner with a case. Django admin never gets
    this far either: its inlines offer no delete for such a partner (`partners.admin`).
    """
    case_model = apps.get_model("offboarding", "Case")
    cases = list(case_model.objects.filter(partner_id__in=partner_ids).order_by("pk")[:1])
    if cases:
        raise CaseRecordProtected(
            f"Cannot delete {model._meta.verbose_name_plural}: their partner has an "
            f"offboarding case ({cases[0]}); steps suspend or deactivate them, nothing "
            "deletes them.",
            set(cases),
        )


class PartnerSystemQuerySet(models.QuerySet):
    """Licences and referral links: a bulk delete is checked like a single one."""

    def delete(self):
        partner_ids = self.order_by().values("partner_id")
        refuse_deleting_records_of_cased_partners(self.model, partner_ids)
        return super().delete()

    delete.alters_data = True
    delete.queryset_only = True


class PartnerSystemRecord(models.Model):
    """What licences and referral links share: kept while their partner has a case."""

    objects = PartnerSystemQuerySet.as_manager()

    class Meta:
        abstract = True

    def delete(self, using=None, keep_parents=False):
        refuse_deleting_records_of_cased_partners(type(self), [self.partner_id])
        return super().delete(using=using, keep_parents=keep_parents)


class LicenceStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    SUSPENDED = "suspended", "Suspended"


class Licence(PartnerSystemRecord):
    """A licence or SKU on the partner's CRM account (the source's "SFDC asset page")."""

    # CASCADE only reaches a partner with no case, payout or payment (those relations are
    # PROTECT); see `refuse_deleting_records_of_cased_partners`.
    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="licences")
    sku = models.CharField("SKU", max_length=40)
    product_name = models.CharField(max_length=200)
    is_membership = models.BooleanField(
        default=False, help_text="The $0 program-membership SKU that step 6 suspends."
    )
    status = models.CharField(
        max_length=12, choices=LicenceStatus.choices, default=LicenceStatus.ACTIVE
    )
    suspended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-is_membership", "product_name"]
        constraints = [
            models.UniqueConstraint(
                fields=["partner", "sku"], name="licence_unique_sku_per_partner"
            )
        ]

    def __str__(self):
        return f"{self.product_name} ({self.sku})"


class ReferralLinkStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    DEACTIVATED = "deactivated", "Deactivated"


class ReferralLink(PartnerSystemRecord):
    """A referral link in the partner portal: how clients reach, and pay, the partner."""

    # See `Licence.partner`: CASCADE for an unused partner, refused once it has a case.
    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="referral_links")
    code = models.SlugField(max_length=60, unique=True)
    target_url = models.URLField(max_length=300)
    status = models.CharField(
        max_length=12, choices=ReferralLinkStatus.choices, default=ReferralLinkStatus.ACTIVE
    )
    deactivated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["code"]

    def __str__(self):
        return self.code
