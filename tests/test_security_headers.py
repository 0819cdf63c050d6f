"""Security headers: a Content-Security-Policy allowing only the app's own static files,
a Permissions-Policy turning every powerful feature off, and `Cache-Control: no-store` on
what signed-in users are served (not on static files). Pages carry no inline script or
style the policy would refuse (tests/browser/test_csp.py checks the same in Chromium)."""

from html.parser import HTMLParser

import pytest
from django.test import Client
from django.urls import reverse

from notifications.models import Notification
from tests.factories import CaseFactory, UserFactory

pytestmark = pytest.mark.django_db


def directives(response) -> dict[str, list[str]]:
    policy = response["Content-Security-Policy"]
    parsed = {}
    for part in policy.split(";"):
        name, *values = part.split()
        parsed[name] = values
    return parsed


def test_the_policy_allows_the_apps_own_files_only(client):
    policy = directives(client.get(reverse("login")))
    assert policy["default-src"] == ["'self'"]
    for name in ("script-src", "style-src", "font-src", "connect-src"):
        assert policy[name] == ["'self'"], name
    # Bootstrap's CSS draws its icons as data: images; nothing else but our own.
    assert policy["img-src"] == ["'self'", "data:"]
    assert policy["object-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["form-action"] == ["'self'"]
    assert policy["base-uri"] == ["'self'"]
    everything = " ".join(v for values in policy.values() for v in values)
    assert "unsafe-inline" not in everything
    assert "unsafe-eval" not in everything


def test_permissions_policy_turns_powerful_features_off(client):
    header = client.get(reverse("login"))["Permissions-Policy"]
    features = dict(item.strip().split("=") for item in header.split(","))
    for feature in ("camera", "microphone", "geolocation", "payment", "usb", "fullscreen"):
        assert features[feature] == "()", feature


def test_signed_in_pages_are_not_stored(client):
    client.force_login(UserFactory(username="cam"))
    for url in ("/work/", "/cases/", "/partners/", "/inbox/"):
        response = client.get(url)
        assert response.status_code == 200
        cache_control = {v.strip() for v in response["Cache-Control"].split(",")}
        assert {"no-store", "private"} <= cache_control, url
        assert "Content-Security-Policy" in response
        assert "Permissions-Policy" in response


def test_a_signed_in_download_is_not_stored_either(client, roles):
    case = CaseFactory(state="step_8", money=True, actors=roles)
    client.force_login(roles["car"])
    response = client.get(reverse("final_statement", args=[case.pk]), {"format": "csv"})
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]


def test_static_files_are_cacheable_even_for_signed_in_users(client):
    client.force_login(UserFactory(username="cam"))
    response = client.get("/static/css/partnerops.css")
    assert response.status_code == 200
    assert "no-store" not in response.get("Cache-Control", "")


class InlineCode(HTMLParser):
    """Every inline script, style element, style="" and on*= handler of a page."""

    def __init__(self):
        super().__init__()
        self.found = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        data_only = attributes.get("type") in ("application/json", "text/template")
        if tag == "script" and "src" not in attributes and not data_only:
            self.found.append(f"inline <script> {self.getpos()}")
        if tag == "style":
            self.found.append(f"<style> element {self.getpos()}")
        for name, value in attrs:
            if name == "style":
                self.found.append(f'<{tag} style="{value}"> {self.getpos()}')
            if name.startswith("on"):
                self.found.append(f'<{tag} {name}="{value}"> {self.getpos()}')
            if name in ("href", "src", "action") and (value or "").strip().startswith(
                "javascript:"
            ):
                self.found.append(f"<{tag} {name}={value}> {self.getpos()}")


def inline_code(response) -> list[str]:
    parser = InlineCode()
    parser.feed(response.content.decode())
    return parser.found


def test_the_parser_finds_what_the_policy_refuses():
    parser = InlineCode()
    parser.feed(
        '<script>x()</script><script src="/a.js"></script><p style="color:red" onclick="y()">'
        '<style>p{}</style><a href="javascript:z()">z</a><script type="application/json">{}'
    )
    assert len(parser.found) == 5


@pytest.fixture
def pages(roles):
    case = CaseFactory(state="step_8", money=True, actors=roles)
    admin = UserFactory(username="root", is_staff=True, is_superuser=True)
    return {
        "car": [
            "/work/",
            "/cases/",
            reverse("case_detail", args=[case.pk]),
            reverse("final_statement", args=[case.pk]),
            reverse("car_console"),
            reverse("partner_list"),
            reverse("partner_detail", args=[case.partner.pk]),
            reverse("notification_preferences"),
        ],
        admin: [
            reverse("admin:index"),
            reverse("admin:offboarding_case_changelist"),
            reverse("admin:offboarding_case_change", args=[case.pk]),
            reverse("admin:axes_accessattempt_changelist"),
            reverse("admin:otp_totp_totpdevice_changelist"),
        ],
        None: [reverse("login")],
    }


def test_pages_have_no_inline_script_or_style(roles, pages):
    found = {}
    for who, urls in pages.items():
        client = Client()
        if who is not None:
            client.force_login(roles[who] if isinstance(who, str) else who)
        for url in urls:
            response = client.get(url)
            assert response.status_code == 200, url
            if problems := inline_code(response):
                found[url] = problems
    assert not found


def test_the_inbox_has_no_inline_style(client, roles):
    # Notification bodies keep their line breaks with a class (static/css), not style="".
    Notification.objects.create(
        recipient=roles["cam"], kind="step_due", title="Due", body="Line one\nLine two"
    )
    client.force_login(roles["cam"])
    assert inline_code(client.get(reverse("inbox"))) == []
