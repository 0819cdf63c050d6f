from django.contrib import admin
from django.utils import timezone

from .models import EmailStatus, Notification, NotificationPreference


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    show_full_result_count = False  # hundreds of thousands of rows
    list_display = (
        "title",
        "recipient",
        "kind",
        "email_status",
        "email_attempts",
        "created_at",
        "emailed_at",
        "read_at",
    )
    list_filter = ("email_status", "kind")
    list_select_related = ("recipient",)
    search_fields = ("title", "recipient__username", "email_error")
    readonly_fields = [field.name for field in Notification._meta.fields]
    actions = ["retry_email"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        # Every field is read-only; a Save would only write the row back as it was read,
        # over what the delivery worker recorded meanwhile. Retries go through the action.
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # the record of who was told what, written by the services only

    @admin.action(description="Send the email again (failed rows)")
    def retry_email(self, request, queryset):
        from .services import enqueue_delivery

        ids = list(queryset.filter(email_status=EmailStatus.FAILED).values_list("pk", flat=True))
        Notification.objects.filter(pk__in=ids).update(
            email_status=EmailStatus.PENDING, email_attempts=0, next_attempt_at=timezone.now()
        )
        enqueue_delivery(ids)
        self.message_user(request, f"{len(ids)} email(s) queued again.")


@admin.register(NotificationPreference)
class NotificationPreferenceAdmin(admin.ModelAdmin):
    list_display = ("user", "kind", "delivery")
    list_filter = ("kind", "delivery")
