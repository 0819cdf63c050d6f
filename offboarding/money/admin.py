"""Ledger admin: read-only rows (changes go through the services and the CSV importer)."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import render
from django.urls import path

from payouts.models import Commission, GuardOverride, Order, Payment, Payout

from .forms import LedgerImportForm
from .importers import COLUMNS, ImportRejected, import_csv


class ReadOnlyLedgerAdmin(admin.ModelAdmin):
    """Shown, never written: every field (whatever fields the model has now or gains) is
    read-only, and there is no add, change or delete. A Save here would write back the whole
    row as it was read, over a payment the services recorded meanwhile; status, paid amount,
    payments and overrides change only through `offboarding.money.services` and the CSV importer."""

    # Ledger tables run to millions of rows: no full count on every filtered page.
    show_full_result_count = False

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False  # view-only: `has_view_permission` still accepts view or change perms

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Payout)
class PayoutAdmin(ReadOnlyLedgerAdmin):
    list_display = (
        "reference",
        "partner",
        "amount",
        "paid_amount",
        "currency",
        "status",
        "earned_on",
    )
    list_filter = ("status", "currency")
    list_select_related = ("partner",)
    search_fields = ("reference", "partner__display_name", "partner__record_id")
    change_list_template = "admin/payouts/payout/change_list.html"

    def get_urls(self):
        return [
            path(
                "import/",
                self.admin_site.admin_view(self.import_view),
                name="payouts_ledger_import",
            ),
            *super().get_urls(),
        ]

    def import_view(self, request):
        if not request.user.has_perm("payouts.add_payout"):
            raise PermissionDenied
        report = None
        form = LedgerImportForm(request.POST or None, request.FILES or None)
        status = 200
        if request.method == "POST" and form.is_valid():
            try:
                report = import_csv(form.cleaned_data["kind"], form.cleaned_data["file"].read())
            except ImportRejected as rejected:
                report, status = rejected.report, 400
                self.message_user(request, report.summary(), level=messages.ERROR)
            else:
                self.message_user(request, report.summary(), level=messages.SUCCESS)
        elif request.method == "POST":
            status = 400
        context = self.admin_site.each_context(request) | {
            "opts": self.model._meta,
            "form": form,
            "report": report,
            "columns": COLUMNS,
            "title": "Import ledger lines from CSV",
        }
        return render(request, "admin/payouts/import.html", context, status=status)


@admin.register(Commission)
class CommissionAdmin(ReadOnlyLedgerAdmin):
    list_display = ("reference", "source", "partner", "amount", "currency", "status", "earned_on")
    list_filter = ("status", "currency", "source")
    list_select_related = ("partner",)
    search_fields = ("reference", "partner__display_name")


@admin.register(Order)
class OrderAdmin(ReadOnlyLedgerAdmin):
    list_display = ("reference", "partner", "amount", "currency", "status", "ordered_on")
    list_filter = ("status", "currency")
    list_select_related = ("partner",)
    search_fields = ("reference", "partner__display_name")


@admin.register(Payment)
class PaymentAdmin(ReadOnlyLedgerAdmin):
    list_display = (
        "reference",
        "payout",
        "amount",
        "currency",
        "paid_on",
        "method",
        "recorded_by",
        "override",
    )
    list_select_related = ("payout", "recorded_by", "override")
    search_fields = ("reference", "payout__reference")


@admin.register(GuardOverride)
class GuardOverrideAdmin(ReadOnlyLedgerAdmin):
    """Overrides are granted and approved through the guard's service only. The columns and
    joins come from the model's fields, so a field added to `GuardOverride` is shown, read-only,
    with no change here."""

    def get_list_display(self, request):
        return ["__str__", *(field.name for field in self.model._meta.fields if field.name != "id")]

    def get_list_select_related(self, request):
        return [field.name for field in self.model._meta.fields if field.many_to_one]
