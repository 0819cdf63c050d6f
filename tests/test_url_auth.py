"""Every URL of the project needs a login (after cisagov/manage.get.gov's test_url_auth).

The URLconf is walked recursively; each pattern becomes a sample URL with real ids for its
arguments. An anonymous GET and POST must be redirected to a login page (the site's, or for
admin URLs the admin's) with `next` pointing back, never answered with 200 or 500. Only the
patterns in `SKIPPED` are exempt, each with its reason.
"""

import datetime as dt
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse
from django.utils import timezone

from notifications.models import Notification, NotificationKind
from offboarding import services
from offboarding.models import Case, CaseEvent, EvidenceFile
from payouts.models import Payment
from tests.factories import CaseFactory, PartnerFactory, PayoutFactory, UserFactory

pytestmark = pytest.mark.django_db

# Patterns (by their full route) that are exempt from the sweep, and why.
SKIPPED = {
    "login/": "the site login page itself must be reachable anonymously",
    "admin/login/": "the admin login page itself must be reachable anonymously",
    "admin/logout/": "admin logout: logging out needs no login (it redirects anonymous users)",
    "healthz": "the health check is for load balancers; it shows up/down only (tested below)",
}


def _walk(patterns, prefix=""):
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern):
            yield route, pattern


ALL_PATTERNS = list(_walk(get_resolver().url_patterns))
SWEPT = [(route, pattern) for route, pattern in ALL_PATTERNS if route not in SKIPPED]


def test_skip_list_names_only_existing_patterns():
    routes = {route for route, _ in ALL_PATTERNS}
    assert set(SKIPPED) <= routes
    # The sweep covers every other pattern of the project, admin included.
    assert len(SWEPT) == len(ALL_PATTERNS) - len(SKIPPED)
    assert any(route.startswith("admin/") for route, _ in SWEPT)
    for name in (
        "my_work",
        "case_list",
        "case_detail",
        "complete_step",
        "withdraw_case",
        "add_payment",
        "money_form",
        "evidence_download",
        "case_record_export",
        "partner_records_export",
        "start_offboarding",
        "partner_list",
        "partner_detail",
        "inbox",
        "notification_read",
        "notifications_read_all",
        "logout",
        "home",
    ):
        assert any(p.name == name for _, p in SWEPT), name


@pytest.fixture
def world(roles):
    """Real rows for every id a URL can carry: a case with evidence, a partner, a
    notification, a user, a payout and a payment."""
    partner = PartnerFactory(cam=roles["cam"])
    case = services.open_case(
        actor=roles["cam"],
        partner_id=partner.pk,
        data={
            "initiated_by": "company",
            "reason": "revenue_minimum",
            "reason_detail": "",
            "request_received_on": timezone.localdate() - dt.timedelta(days=1),
            "request_channel": "internal_review",
        },
        evidence=[SimpleUploadedFile("x.pdf", b"%PDF-1.4 test", "application/pdf")],
    )
    payout = PayoutFactory(partner=partner)
    Payment.objects.create(
        payout=payout,
        case=case,
        amount=payout.amount,
        currency=payout.currency,
        paid_on=timezone.localdate(),
        reference="ACH-URL-AUTH",
        recorded_by=roles["car"],
    )
    Notification.objects.create(
        recipient=roles["cam"], kind=NotificationKind.STEP_ASSIGNED, case=case, title="Yours"
    )
    try:
        preference_model = apps.get_model("notifications", "NotificationPreference")
    except LookupError:
        preference_model = None
    if preference_model is not None:
        preference_model.objects.create(
            user=roles["cam"], kind=NotificationKind.STEP_ASSIGNED, delivery="in_app"
        )
    assert EvidenceFile.objects.exists()
    return {"case": case, "partner": partner, "roles": roles}


def _object_id(route, world):
    """A real primary key for the admin model named in the route, else the case's."""
    match = re.match(r"admin/(\w+)/(\w+)/", route)
    if match:
        try:
            model = apps.get_model(match.group(1), match.group(2))
        except LookupError:
            model = None
        if model is not None:
            obj = model.objects.order_by("pk").first()
            # A model added since this file was written may have no row in `world`: the
            # login check happens before any lookup, so an unused id still tests the URL.
            return obj.pk if obj is not None else 987654
    return world["case"].pk


def _sample(route, name, world):
    """The sample value of URL argument `name` in `route`."""
    if name == "pk":
        if route.startswith("evidence/"):
            return EvidenceFile.objects.order_by("pk").first().pk
        if route.startswith("partners/"):
            return world["partner"].pk
        if route.startswith("inbox/"):
            return Notification.objects.order_by("pk").first().pk
        return world["case"].pk
    if name == "partner_pk":
        return world["partner"].pk
    if name == "step_number":
        return 2
    if name == "form_name":
        return "payment"
    if name == "object_id":
        if route.startswith("admin/r/"):
            return world["case"].pk
        return _object_id(route, world)
    if name == "content_type_id":
        return ContentType.objects.get_for_model(Case).pk
    if name == "id":
        return get_user_model().objects.order_by("pk").first().pk
    if name == "transition_name":
        return "record_company_removal"
    if name == "app_label":
        return "offboarding"
    if name == "url":
        return "no-such-page/"
    raise AssertionError(f"No sample value for <{name}> in {route!r}: add one.")


def sample_url(route, world):
    def converter(match):
        return str(_sample(route, match.group("name"), world))

    url = re.sub(r"\(\?P<(?P<name>\w+)>[^)]*\)", converter, route)  # regex groups first
    url = re.sub(r"<(?:\w+:)?(?P<name>\w+)>", converter, url)
    return "/" + url.replace("^", "").replace("$", "")


def _login_pages(route):
    site_login = reverse("login")
    if route.startswith("admin/"):
        # Site-wide admin views send to the admin login; ModelAdmin views are not marked
        # by Django with the admin's login_url, so LoginRequiredMiddleware sends them to
        # the site login (which logs staff in just as well). Both are login pages.
        return {reverse("admin:login"), site_login}
    return {site_login}


@pytest.mark.parametrize("method", ["get", "post"])
@pytest.mark.parametrize(("route", "pattern"), SWEPT, ids=[route for route, _ in SWEPT])
def test_anonymous_is_sent_to_login(client, world, route, pattern, method):
    url = sample_url(route, world)
    match = resolve(url)
    assert match.func == pattern.callback, f"{url} resolves to {match.view_name}, not {route}"
    states = dict(Case.objects.values_list("pk", "state"))
    events = CaseEvent.objects.count()

    response = getattr(client, method)(url)

    assert response.status_code == 302, f"{method.upper()} {url} -> {response.status_code}"
    location = urlsplit(response["Location"])
    assert location.path in _login_pages(route), f"{url} redirects to {response['Location']}"
    assert parse_qs(location.query).get("next") == [url]
    # Nothing happened on the anonymous request.
    assert dict(Case.objects.values_list("pk", "state")) == states
    assert CaseEvent.objects.count() == events


def test_admin_site_views_send_to_the_admin_login(client):
    for name in ("admin:index", "admin:password_change", "admin:jsi18n"):
        response = client.get(reverse(name))
        assert response.status_code == 302
        assert urlsplit(response["Location"]).path == reverse("admin:login")


def test_login_page_is_reachable_anonymously(client):
    assert client.get(reverse("login")).status_code == 200
    assert client.get(reverse("admin:login")).status_code == 200


# ---- state-changing views refuse GET ----


def _post_only_urls(world):
    case = world["case"]
    notification = Notification.objects.filter(recipient=world["roles"]["cam"]).first()
    assert notification is not None
    return {
        "complete_step": reverse("complete_step", args=[case.pk, 2]),
        "withdraw_case": reverse("withdraw_case", args=[case.pk]),
        "add_payment": reverse("add_payment", args=[case.pk]),
        "notification_read": reverse("notification_read", args=[notification.pk]),
        "notifications_read_all": reverse("notifications_read_all"),
        "logout": reverse("logout"),
    }


@pytest.mark.parametrize(
    "name",
    [
        "complete_step",
        "withdraw_case",
        "add_payment",
        "notification_read",
        "notifications_read_all",
        "logout",
    ],
)
def test_state_changing_views_answer_get_with_405(client, world, name):
    cam = world["roles"]["cam"]
    client.force_login(cam)
    url = _post_only_urls(world)[name]
    states = dict(Case.objects.values_list("pk", "state"))
    unread = Notification.objects.filter(recipient=cam, read_at__isnull=True).count()
    assert unread > 0

    response = client.get(url)

    assert response.status_code == 405
    assert "POST" in response["Allow"]
    assert dict(Case.objects.values_list("pk", "state")) == states
    assert Notification.objects.filter(recipient=cam, read_at__isnull=True).count() == unread
    # Still logged in: GET /logout/ did not log out.
    assert client.get(reverse("my_work")).status_code == 200


# ---- GET endpoints that draw a form alone (htmx) deny by default ----

# Each: the URL name, and who may see the case but not act on it (a 403, not the form).
FORM_ENDPOINTS = {"money_form": ("cam", "salesops", "portaladmin", "manager")}


def _form_endpoint_url(name, case):
    if name == "money_form":
        return reverse("money_form", args=[case.pk, "payment"])
    raise AssertionError(f"No sample URL for {name}: add one.")


def test_every_form_endpoint_is_in_the_table():
    drawn_alone = {p.name for _, p in SWEPT if p.name and p.name.endswith("_form")}
    assert drawn_alone == set(FORM_ENDPOINTS)


@pytest.mark.parametrize("htmx", [True, False], ids=["htmx", "plain"])
@pytest.mark.parametrize("name", sorted(FORM_ENDPOINTS))
def test_form_endpoints_deny_who_may_not_see_or_act(client, roles, name, htmx):
    case = CaseFactory(state="step_8", money=True, actors=roles)
    url = _form_endpoint_url(name, case)
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}

    anonymous = client.get(url, **headers)
    assert anonymous.status_code == 302
    assert urlsplit(anonymous["Location"]).path == reverse("login")
    client.force_login(roles["cam2"])  # another partner's CAM: the case does not exist
    assert client.get(url, **headers).status_code == 404
    for username in FORM_ENDPOINTS[name]:
        client.force_login(roles[username])
        response = client.get(url, **headers)
        assert response.status_code == 403, username
        assert 'id="money-form"' not in response.content.decode(), username
    client.force_login(roles["car"])  # the counterpart: who may act gets the form
    assert client.get(url, **headers).status_code == 200


def test_healthz_answers_anonymously_with_status_only(client):
    # No worker has beaten in this test, so the verdict is "failing"; the test below beats.
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"status": "failing"}
    assert client.post("/healthz").status_code == 405


def test_healthz_is_ok_once_a_worker_has_beaten(client):
    from health.tasks import heartbeat

    heartbeat()
    assert client.get("/healthz").json() == {"status": "ok"}
    client.force_login(UserFactory(username="staff", is_staff=True))
    body = client.get("/healthz").json()
    assert set(body) == {"status", "time", "database", "broker", "worker"}
    assert body["database"]["ok"] is True
    assert body["worker"]["ok"] is True
