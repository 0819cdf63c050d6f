"""The floor page: the cheapest page the stack can serve — login required, one indexed query,
the base template with its context processors. Every page's latency is compared with it."""

from django.shortcuts import render
from django.views.decorators.http import require_GET

from offboarding.models import Case


@require_GET
def floor(request):
    latest = Case.objects.order_by("-pk").values_list("pk", flat=True).first()
    return render(request, "bench/floor.html", {"latest_case": latest})
