from django.core.paginator import Paginator
from django.db.models import Q
from django.shortcuts import render
from django.views.decorators.http import require_GET

from partners.access import get_partner_for, visible_partners
from partners.models import PartnerStatus, Portal, Tier

from . import access as case_access
from .partner_selectors import partner_records

PAGE_SIZE = 25


@require_GET
def partner_list(request):
    filters = {
        "q": request.GET.get("q", "").strip(),
        "status": request.GET.get("status", ""),
        "tier": request.GET.get("tier", ""),
        "portal": request.GET.get("portal", ""),
    }
    partners = visible_partners(request.user).select_related("cam")
    if filters["q"]:
        q = filters["q"]
        partners = partners.filter(
            Q(display_name__icontains=q) | Q(legal_name__icontains=q) | Q(record_id__iexact=q)
        )
    for field, choices in (("status", PartnerStatus), ("tier", Tier), ("portal", Portal)):
        if filters[field] in choices.values:
            partners = partners.filter(**{field: filters[field]})
    page = Paginator(partners.order_by("display_name", "pk"), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    template = "partners/_partner_table.html" if request.htmx else "partners/partner_list.html"
    return render(
        request,
        template,
        {
            "page": page,
            "filters": filters,
            "statuses": PartnerStatus.choices,
            "tiers": Tier.choices,
            "portals": Portal.choices,
        },
    )


@require_GET
def partner_detail(request, pk):
    partner = get_partner_for(
        request.user, pk, visible_partners(request.user).select_related("cam")
    )
    records = partner_records(request.user, partner)
    return render(
        request,
        "partners/partner_detail.html",
        {
            "partner": partner,
            "licences": records.licences,
            "links": records.links,
            "cases": records.cases,
            "open_case": records.open_case,
            "can_offboard": partner.status == PartnerStatus.ACTIVE
            and case_access.can_open_case(request.user, partner),
        },
    )
