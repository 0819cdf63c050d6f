"""Django admin cannot bypass a step (issue 14, part 8).

What a step owns — the partner's status reason, offboard date, opted-out flag, distribution
group, landing pages, portal and archive time, each licence's and referral link's status —
is read-only on an existing partner; a partner with a case keeps its licences and links
(admin and ORM); a partner with a case or ledger lines cannot be deleted (admin shows
Django's "Cannot delete" page, the ORM raises `ProtectedError`); the ledger and outbox
admins are view-only; anonymous `/healthz` says ok or failing and nothing else.
"""

import datetime as dt
import html
import json
import re
import uuid
from decimal import Decimal
from html.parser import HTMLParser

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db import OperationalError
from django.db.models import ProtectedError
from django.test import RequestFactory, override_settings
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import SimpleLazyObject

import health.views
from health.tasks import heartbeat
from notifications.models import Notification
from offboarding.models import CaseEvent
from offboarding.money.services import record_payment
from partners.models import (
    Licence,
    LicenceStatus,
    Partner,
    PartnerStatus,
    Portal,
    ReferralLink,
    ReferralLinkStatus,
)
from payouts.models import Commission, GuardOverride, Order, Payment, Payout
from tests.factories import CaseFactory, PartnerFactory, PayoutFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser():
    return get_user_model().objects.create_superuser("root", "root@example.com", "pw")


@pytest.fixture
def offboarded(roles):
    """A beta-portal partner whose case is done: opted out, out of the group, no landing
    pages, membership SKU suspended, referral link deactivated, archived on the portal."""
    case = CaseFactory(actors=roles, state="done", partner_kwargs={"beta": True})
    partner = Partner.objects.get(pk=case.partner_id)
    assert partner.status == PartnerStatus.OFFBOARDED
    assert partner.licences.get().status == LicenceStatus.SUSPENDED
    assert partner.referral_links.get().status == ReferralLinkStatus.DEACTIVATED
    return partner


# ---- posting an admin form back, as a browser would -----------------------------------


class _BrowserForm(HTMLParser):
    """What a browser would send from the page's main admin form (`<form id="…_form">`) if
    submitted as it is: named inputs (checkboxes and radios only when checked), the selected
    option of each select, each textarea's text."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.data, self._in_form, self._select, self._textarea = {}, False, None, None
        self._options = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self._in_form = attrs.get("id", "").endswith("_form")
        if not self._in_form:
            return
        name = attrs.get("name")
        if tag == "input" and name:
            kind = attrs.get("type", "text")
            if kind in ("submit", "button", "reset", "file", "image"):
                return
            if kind in ("checkbox", "radio"):
                if "checked" in attrs:
                    self.data[name] = attrs.get("value") or "on"
                return
            self.data[name] = attrs.get("value") or ""
        elif tag == "select" and name:
            self._select, self._options = name, []
        elif tag == "option" and self._select:
            self._options.append((attrs.get("value", ""), "selected" in attrs))
        elif tag == "textarea" and name:
            self._textarea = name
            self.data[name] = ""

    def handle_data(self, data):
        if self._textarea:
            self.data[self._textarea] += data

    def handle_endtag(self, tag):
        if tag == "form":
            self._in_form = False
        elif tag == "select" and self._select:
            chosen = [value for value, selected in self._options if selected]
            if chosen or self._options:
                self.data[self._select] = chosen[0] if chosen else self._options[0][0]
            self._select = None
        elif tag == "textarea":
            self._textarea = None


def _posted(response) -> dict:
    """The POST a browser sends from an admin add/change page left as it is."""
    assert response.status_code == 200, response.status_code
    parser = _BrowserForm()
    parser.feed(response.content.decode())
    # A textarea's first newline is markup, not text (HTML's parsing rules).
    return {key: value.removeprefix("\n") for key, value in parser.data.items()}


def _post_change(client, partner, changes: dict, *, drop=()):
    url = reverse("admin:partners_partner_change", args=[partner.pk])
    data = _posted(client.get(url)) | changes
    for key in drop:
        data.pop(key, None)
    response = client.post(url, data)
    assert response.status_code == 302, _errors(response)
    return response


def _errors(response):
    """The errors the admin page shows (its error list items), or the status."""
    found = re.findall(
        r'<ul class="errorlist[^"]*"[^>]*>(.*?)</ul>', response.content.decode(), re.S
    )
    return [
        html.unescape(re.sub(r"<[^>]+>", " ", e)).split() for e in found
    ] or response.status_code


# ---- the partner's own fields ----------------------------------------------------------

# field: (value when registering, value a later change tries to set)
STEP_OWNED = {
    "status_reason": ("Registered in 2026", "Reinstated by admin"),
    "opted_out": (True, False),
    "in_distribution_group": (False, True),
    "landing_page_access": (False, True),
    "portal": (Portal.BETA, Portal.LEGACY),
}


def _form_value(value):
    if isinstance(value, bool):
        return "on" if value else None
    return str(value)


@pytest.mark.parametrize("field", sorted(STEP_OWNED))
def test_a_step_owned_partner_field_is_set_when_registering_and_read_only_after(
    client, superuser, field
):
    registered, attempted = STEP_OWNED[field]
    client.force_login(superuser)
    add_url = reverse("admin:partners_partner_add")
    data = _posted(client.get(add_url)) | {
        "legal_name": "Newco LLC",
        "display_name": "Newco",
        "record_id": "QB-NEW-1",
    }
    data.pop(field, None)
    if _form_value(registered) is not None:
        data[field] = _form_value(registered)
    response = client.post(add_url, data)
    assert response.status_code == 302, _errors(response)
    partner = Partner.objects.get(record_id="QB-NEW-1")
    assert getattr(partner, field) == registered  # an admin registering a partner sets it

    changes = {"display_name": "Newco Renamed"}
    if _form_value(attempted) is not None:
        changes[field] = _form_value(attempted)
    _post_change(client, partner, changes, drop=() if _form_value(attempted) else (field,))

    partner.refresh_from_db()
    assert partner.display_name == "Newco Renamed"  # the POST was saved ...
    assert getattr(partner, field) == registered  # ... but not the step's field
    page = client.get(reverse("admin:partners_partner_change", args=[partner.pk])).content
    assert f'name="{field}"'.encode() not in page


def test_a_change_post_of_every_step_owned_field_changes_none_of_them(
    client, superuser, offboarded
):
    client.force_login(superuser)
    before = Partner.objects.filter(pk=offboarded.pk).values().get()
    events = CaseEvent.objects.filter(case__partner=offboarded).count()
    attempted = {
        "status": PartnerStatus.ACTIVE,
        "status_reason": "",
        "offboard_date": "2099-01-01",
        "in_distribution_group": "on",
        "landing_page_access": "on",
        "portal": Portal.LEGACY,
        "portal_archived_at_0": "",
        "portal_archived_at_1": "",
        "tier": "elite",
    }

    _post_change(client, offboarded, attempted, drop=("opted_out",))  # opted_out unticked

    after = Partner.objects.filter(pk=offboarded.pk).values().get()
    assert after.pop("tier") == "elite"  # the POST was saved, the steps' fields were not
    for row in (before, after):
        row.pop("tier", None), row.pop("updated_at")
    assert after == before
    assert after["opted_out"] and not after["in_distribution_group"]
    assert not after["landing_page_access"] and after["portal"] == Portal.BETA
    assert CaseEvent.objects.filter(case__partner=offboarded).count() == events


# ---- licences and referral links through the partner's inlines -------------------------


def test_a_deactivated_referral_link_cannot_be_reactivated_through_the_inline(
    client, superuser, offboarded
):
    link = offboarded.referral_links.get()
    client.force_login(superuser)
    changes = {
        "referral_links-0-status": ReferralLinkStatus.ACTIVE,
        **{f"referral_links-0-deactivated_at{k}": "" for k in ("_0", "_1")},
        "referral_links-0-target_url": "https://example.com/still-earning",
    }

    _post_change(client, offboarded, changes)

    link.refresh_from_db()
    assert link.target_url == "https://example.com/still-earning"
    assert link.status == ReferralLinkStatus.DEACTIVATED
    assert link.deactivated_at is not None


def test_a_suspended_licence_cannot_be_reactivated_or_unmarked_through_the_inline(
    client, superuser, offboarded
):
    licence = offboarded.licences.get()
    client.force_login(superuser)
    changes = {
        "licences-0-status": LicenceStatus.ACTIVE,
        **{f"licences-0-suspended_at{k}": "" for k in ("_0", "_1")},
        "licences-0-product_name": "Renamed membership",
    }

    _post_change(client, offboarded, changes, drop=("licences-0-is_membership",))

    licence.refresh_from_db()
    assert licence.product_name == "Renamed membership"
    assert licence.status == LicenceStatus.SUSPENDED
    assert licence.suspended_at is not None and licence.is_membership


def test_the_inline_deletes_no_licence_or_link_of_a_partner_with_a_case(
    client, superuser, offboarded
):
    client.force_login(superuser)
    page = client.get(reverse("admin:partners_partner_change", args=[offboarded.pk]))
    assert b'name="licences-0-DELETE"' not in page.content
    assert b'name="referral_links-0-DELETE"' not in page.content

    _post_change(client, offboarded, {"licences-0-DELETE": "on", "referral_links-0-DELETE": "on"})

    assert offboarded.licences.filter(status=LicenceStatus.SUSPENDED).exists()
    assert offboarded.referral_links.filter(status=ReferralLinkStatus.DEACTIVATED).exists()


def test_an_open_case_also_keeps_its_partners_licences_and_links(client, superuser, roles):
    case = CaseFactory(actors=roles, state="step_4", partner_kwargs={"beta": True})
    client.force_login(superuser)

    _post_change(client, case.partner, {"licences-0-DELETE": "on", "referral_links-0-DELETE": "on"})

    assert case.partner.licences.exists() and case.partner.referral_links.exists()


def test_an_offboarded_partner_gets_no_new_link_or_licence_through_the_inline(
    client, superuser, offboarded
):
    client.force_login(superuser)
    page = client.get(reverse("admin:partners_partner_change", args=[offboarded.pk]))
    # An inline that may add rows draws the empty row its "Add another" button copies.
    assert page.status_code == 200
    assert 'id="licences-empty"' not in page.content.decode()
    assert 'id="referral_links-empty"' not in page.content.decode()
    changes = {
        "referral_links-TOTAL_FORMS": "2",
        "referral_links-1-code": "back-in-business",
        "referral_links-1-target_url": "https://example.com/again",
        "referral_links-1-status": ReferralLinkStatus.ACTIVE,
        "licences-TOTAL_FORMS": "2",
        "licences-1-sku": "NEW-1",
        "licences-1-product_name": "A new licence",
        "licences-1-status": LicenceStatus.ACTIVE,
    }

    client.post(
        reverse("admin:partners_partner_change", args=[offboarded.pk]),
        _posted(client.get(reverse("admin:partners_partner_change", args=[offboarded.pk])))
        | changes,
    )

    assert not ReferralLink.objects.filter(code="back-in-business").exists()
    assert not Licence.objects.filter(sku="NEW-1").exists()
    assert offboarded.referral_links.filter(status=ReferralLinkStatus.ACTIVE).count() == 0


def test_the_orm_deletes_no_licence_or_link_of_a_partner_with_a_case(offboarded):
    licence = offboarded.licences.get()
    link = offboarded.referral_links.get()

    with pytest.raises(ProtectedError):
        licence.delete()
    with pytest.raises(ProtectedError):
        Licence.objects.filter(partner=offboarded).delete()
    with pytest.raises(ProtectedError):
        link.delete()
    with pytest.raises(ProtectedError):
        ReferralLink.objects.filter(pk=link.pk).delete()

    assert Licence.objects.filter(pk=licence.pk, status=LicenceStatus.SUSPENDED).exists()
    assert ReferralLink.objects.filter(pk=link.pk).exists()


# ---- deleting partners -----------------------------------------------------------------


# Each makes a partner with that history and returns it with the row that protects it.


def _with_case(roles):
    case = CaseFactory(actors=roles, state="step_2", partner_kwargs={"beta": True})
    return case.partner, case


def _with_payout(roles):
    payout = PayoutFactory(partner=PartnerFactory(cam=roles["cam"], beta=True))
    return payout.partner, payout


def _with_payment(roles):
    payout = PayoutFactory(partner=PartnerFactory(cam=roles["cam"], beta=True))
    record_payment(
        actor=roles["car"],
        payout_id=payout.pk,
        amount=payout.amount,
        paid_on=timezone.localdate(),
        reference=f"ACH-{payout.reference}",
    )
    assert Payment.objects.filter(payout=payout).exists()
    return payout.partner, payout  # a payment protects its payout, the payout its partner


def _with_commission(roles):
    partner = PartnerFactory(cam=roles["cam"], beta=True)
    today = timezone.localdate()
    Commission.objects.create(
        partner=partner,
        source="portal",
        reference=f"CM-{uuid.uuid4().hex[:10]}",
        period_start=today - dt.timedelta(days=30),
        period_end=today,
        earned_on=today,
        amount=Decimal("10.00"),
        currency="USD",
    )
    return partner, partner.commissions.get()


def _with_order(roles):
    partner = PartnerFactory(cam=roles["cam"], beta=True)
    Order.objects.create(
        partner=partner,
        reference=f"OR-{uuid.uuid4().hex[:10]}",
        ordered_on=timezone.localdate(),
        amount=Decimal("10.00"),
        currency="USD",
    )
    return partner, partner.orders.get()


HISTORY = {
    "case": _with_case,
    "payout": _with_payout,
    "payment": _with_payment,
    "commission": _with_commission,
    "order": _with_order,
}


@pytest.mark.parametrize("history", sorted(HISTORY))
def test_a_partner_with_history_cannot_be_deleted_in_admin_or_by_the_orm(
    client, superuser, roles, history
):
    partner, protecting = HISTORY[history](roles)
    client.force_login(superuser)
    delete_url = reverse("admin:partners_partner_delete", args=[partner.pk])
    changelist = reverse("admin:partners_partner_changelist")

    page = client.get(delete_url)
    posted = client.post(delete_url, {"post": "yes"})
    bulk = client.post(
        changelist, {"action": "delete_selected", "_selected_action": [partner.pk], "post": "yes"}
    )

    for response in (page, posted, bulk):
        assert response.status_code == 200
        content = html.unescape(response.content.decode())
        assert "Cannot delete partner" in content
        assert "would require deleting the following protected related objects" in content
        assert str(protecting) in content
    with pytest.raises(ProtectedError):
        Partner.objects.get(pk=partner.pk).delete()
    with pytest.raises(ProtectedError):
        Partner.objects.filter(pk=partner.pk).delete()
    assert Partner.objects.filter(pk=partner.pk).exists()
    assert partner.licences.exists() and partner.referral_links.exists()


def test_a_partner_registered_by_mistake_can_be_deleted_in_admin(client, superuser):
    partner = PartnerFactory(beta=True)
    client.force_login(superuser)
    delete_url = reverse("admin:partners_partner_delete", args=[partner.pk])

    assert client.get(delete_url).status_code == 200
    response = client.post(delete_url, {"post": "yes"})

    assert response.status_code == 302
    assert not Partner.objects.filter(pk=partner.pk).exists()
    assert not Licence.objects.filter(partner_id=partner.pk).exists()
    assert not ReferralLink.objects.filter(partner_id=partner.pk).exists()


# ---- the ledger and outbox admins are view-only ----------------------------------------


@pytest.mark.parametrize(
    "model", [Payout, Payment, Commission, Order, GuardOverride, Notification], ids=repr
)
def test_ledger_and_outbox_admins_show_every_field_and_change_nothing(superuser, model):
    model_admin = admin.site._registry[model]
    request = RequestFactory().get("/admin/")
    request.user = superuser

    assert model_admin.has_view_permission(request)
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request)
    assert not model_admin.has_delete_permission(request)
    fields = {field.name for field in model._meta.fields}
    assert set(model_admin.get_readonly_fields(request)) == fields


def test_guard_override_admin_lists_whatever_fields_the_model_has(superuser):
    model_admin = admin.site._registry[GuardOverride]
    request = RequestFactory().get("/admin/")
    request.user = superuser
    fields = {field.name for field in GuardOverride._meta.fields} - {"id"}

    assert fields <= set(model_admin.get_list_display(request))
    assert not model_admin.has_change_permission(request)


def test_a_payout_change_post_in_admin_is_refused(client, superuser):
    payout = PayoutFactory()
    client.force_login(superuser)
    url = reverse("admin:payouts_payout_change", args=[payout.pk])

    page = client.get(url)
    response = client.post(url, {"status": "paid", "paid_amount": str(payout.amount)})

    assert page.status_code == 200 and b'name="_save"' not in page.content
    assert response.status_code == 403
    payout.refresh_from_db()
    assert payout.status == "open" and payout.paid_amount == 0


# ---- /healthz ----------------------------------------------------------------------------


@pytest.fixture
def beating():
    heartbeat()


@pytest.fixture
def staff(db):
    return UserFactory(username="staffer", is_staff=True)


@override_settings(REDIS_URL="redis://127.0.0.1:1/0")
def test_healthz_with_the_broker_down_tells_anonymous_callers_only_failing(client, staff, beating):
    anonymous = client.get("/healthz")
    client.force_login(staff)
    detailed = client.get("/healthz")

    assert anonymous.status_code == 503
    assert anonymous.json() == {"status": "failing"}
    assert b"error" not in anonymous.content and b"6379" not in anonymous.content
    assert detailed.status_code == 503
    body = detailed.json()
    assert body["status"] == "failing"
    assert body["database"]["ok"] and body["worker"]["ok"]
    assert body["broker"]["ok"] is False and body["broker"]["error"]


def test_healthz_with_the_database_down_tells_anonymous_callers_only_failing(
    client, staff, beating, monkeypatch
):
    class DownConnection:
        vendor = "postgresql"

        def cursor(self):
            raise RuntimeError('could not connect to "db-secret.internal" as user "ops"')

    monkeypatch.setattr(health.views, "connection", DownConnection())
    anonymous = client.get("/healthz")
    client.force_login(staff)
    detailed = client.get("/healthz")

    assert anonymous.status_code == 503
    assert anonymous.json() == {"status": "failing"}
    assert b"db-secret" not in anonymous.content
    assert detailed.status_code == 503
    assert "db-secret.internal" in detailed.json()["database"]["error"]


def test_healthz_detail_is_for_staff_only(client, roles, staff, beating):
    client.force_login(roles["manager"])  # logged in, but not staff
    assert client.get("/healthz").json() == {"status": "ok"}
    client.force_login(staff)
    body = client.get("/healthz").json()
    assert body["status"] == "ok"
    assert {"time", "database", "broker", "worker"} <= set(body)


def test_healthz_answers_when_even_the_session_cannot_be_read(rf, monkeypatch):
    """With the database down, reading the caller's session fails too: the verdict is still
    given, without the detail, never a 500."""

    class DownConnection:
        def cursor(self):
            raise OperationalError("connection to server at 10.0.0.5 refused")

    def unreadable_user():
        raise OperationalError("connection to server at 10.0.0.5 refused")

    monkeypatch.setattr(health.views, "connection", DownConnection())
    monkeypatch.setattr(health.views, "_worker", lambda: {"ok": True})
    request = rf.get("/healthz")
    request.user = SimpleLazyObject(unreadable_user)

    response = health.views.healthz(request)

    assert response.status_code == 503
    assert json.loads(response.content) == {"status": "failing"}
