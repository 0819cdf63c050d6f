from django.contrib import messages
from django.db import transaction
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from . import selectors
from .forms import PreferencesForm
from .models import NotificationPreference


@require_GET
def inbox(request):
    page = selectors.inbox_page(request.user, request.GET.get("page"))
    return render(
        request, "notifications/inbox.html", {"page": page, "rows": selectors.inbox_rows(page)}
    )


@require_POST
def mark_read(request, pk):
    notification = get_object_or_404(request.user.notifications, pk=pk)
    if notification.read_at is None:
        notification.read_at = timezone.now()
        notification.save(update_fields=["read_at"])
    if notification.case_id and request.POST.get("open") == "1":
        return redirect("case_detail", pk=notification.case_id)
    return redirect("inbox")


@require_POST
def mark_all_read(request):
    request.user.notifications.filter(read_at__isnull=True).update(read_at=timezone.now())
    return redirect("inbox")


@require_http_methods(["GET", "POST"])
def preferences(request):
    current = dict(request.user.notification_preferences.values_list("kind", "delivery"))
    form = PreferencesForm(request.POST or None, current=current)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            for kind, delivery in form.cleaned_data.items():
                NotificationPreference.objects.update_or_create(
                    user=request.user, kind=kind, defaults={"delivery": delivery}
                )
        messages.success(request, "Your notification preferences are saved.")
        return redirect("notification_preferences")
    return render(
        request,
        "notifications/preferences.html",
        {"form": form},
        status=400 if request.method == "POST" else 200,
    )
