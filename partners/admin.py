"""Django admin for the partner register: what only a step may change is shown, not edited.

The offboarding steps own the fields that record the partner leaving: its lifecycle status
(an FSM field), status reason, offboard date, opted-out flag, distribution group, landing
pages, portal and portal archive time, and the status of each licence and referral link.
On an existing partner these are read-only here, so admin can change nothing a case would
not record. Registering a new partner (the add page) sets their initial values — its portal,
flags and licences as they are — except the ones no new partner has (the lifecycle status,
the offboard date, the portal archive time). A wrong portal on a partner is corrected by
Sales Ops through the audited change on the case page, never here.

A partner that has an offboarding case keeps every licence and link (the inlines offer no
delete; `partners.models.refuse_deleting_records_of_cased_partners` refuses the ORM too), and
an offboarded partner gets no new ones. A partner may be deleted only while nothing refers to
it: a case, payout, payment, commission, order or override is a PROTECT foreign key, and
admin shows Django's "Cannot delete partner" page naming them.
"""

from django.contrib import admin

from .access import visible_partners
from .models import Licence, Partner, PartnerStatus, ReferralLink

# Never entered by hand: the lifecycle and what only its end sets, and the timestamps.
ALWAYS_READ_ONLY = ("status", "offboard_date", "portal_archived_at", "created_at", "updated_at")
# Set when the partner is registered; afterwards only the steps change them.
STEP_OWNED_AFTER_ADD = (
    "status_reason",
    "opted_out",
    "in_distribution_group",
    "landing_page_access",
    "portal",
)


class PartnerSystemInline(admin.TabularInline):
    """A licence or referral link: `step_owned` fields are entered when the partner is
    registered and read-only on an existing partner (a row added there starts as the
    model's default, active); no delete once the partner has a case, no new row once it is
    offboarded."""

    extra = 0
    step_owned: tuple[str, ...] = ()

    def get_readonly_fields(self, request, obj=None):
        if obj is None:  # the partner is being registered
            return super().get_readonly_fields(request, obj)
        return (*super().get_readonly_fields(request, obj), *self.step_owned)

    def has_add_permission(self, request, obj):
        if obj is not None and obj.status == PartnerStatus.OFFBOARDED:
            return False
        return super().has_add_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.pk is not None and obj.offboarding_cases.exists():
            return False
        return super().has_delete_permission(request, obj)


class LicenceInline(PartnerSystemInline):
    model = Licence
    # Which SKU is the membership decides what step 6 suspends and what Done checks.
    step_owned = ("is_membership", "status", "suspended_at")


class ReferralLinkInline(PartnerSystemInline):
    model = ReferralLink
    step_owned = ("status", "deactivated_at")


@admin.register(Partner)
class PartnerAdmin(admin.ModelAdmin):
    list_display = ("display_name", "record_id", "cam", "tier", "portal", "status", "offboard_date")
    list_filter = ("status", "tier", "portal")
    list_select_related = ("cam",)
    search_fields = ("display_name", "legal_name", "record_id", "crm_account_id")
    inlines = [LicenceInline, ReferralLinkInline]

    def get_queryset(self, request):
        return visible_partners(request.user, super().get_queryset(request))

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ALWAYS_READ_ONLY
        return (*ALWAYS_READ_ONLY, *STEP_OWNED_AFTER_ADD)

    def get_deleted_objects(self, objs, request):
        """Django's "Cannot delete partner" page: when PROTECT foreign keys refuse, it says
        so and names the case or ledger rows, rather than that the user lacks a permission
        to delete rows (payouts, cases) nobody may delete in admin anyway."""
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        if protected:
            perms_needed = set()  # still refused: `protected` alone blocks the delete
        return deleted, counts, perms_needed, protected
