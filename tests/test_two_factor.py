"""The second factor (TOTP, django-otp): with PARTNEROPS_REQUIRE_2FA_FOR naming CAR and
admins, those users reach no page but enrolment and verification until a code is checked."""

import os
import subprocess
import sys
from binascii import unhexlify
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth import SESSION_KEY
from django.test import Client, override_settings
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.two_factor import PENDING_KEY_SESSION
from tests.factories import UserFactory

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.usefixtures("require_2fa"),
]
ROOT = Path(__file__).resolve().parent.parent
ENROL = "/account/two-factor/"
VERIFY = "/account/two-factor/verify/"


@pytest.fixture
def require_2fa():
    with override_settings(PARTNEROPS_REQUIRE_2FA_FOR=["CAR", "admin"]):
        yield


def code(key_hex: str, offset: int = 0) -> str:
    """The code an authenticator app shows for this secret now (offset: in 30 s steps)."""
    return f"{totp(unhexlify(key_hex), drift=offset):06d}"


def wrong(key_hex: str) -> str:
    return f"{(int(code(key_hex)) + 1) % 1_000_000:06d}"


def enrolled(user) -> TOTPDevice:
    return TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=True)


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def redirect_target(response):
    assert response.status_code == 302, response.status_code
    parts = urlsplit(response["Location"])
    return parts.path, parse_qs(parts.query).get("next")


def test_car_without_a_device_is_sent_to_enrol_and_gets_in_with_a_valid_code(roles):
    client = signed_in(roles["car"])

    assert redirect_target(client.get("/work/")) == (ENROL, ["/work/"])
    page = client.get(f"{ENROL}?next=/work/")
    assert page.status_code == 200
    key = client.session[PENDING_KEY_SESSION]
    text = page.content.decode()
    secret = TOTPDevice(user=roles["car"], key=key).config_url.split("secret=")[1].split("&")[0]
    assert "otpauth://totp/PartnerOps%3Acar?secret=" in text
    assert " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)) in text
    assert 'src="data:image/svg+xml' in text  # the QR code, drawn by the server
    assert not TOTPDevice.objects.exists()  # nothing is kept before a code proves the app

    response = client.post(ENROL, {"token": code(key), "next": "/work/"})

    assert response.status_code == 302
    assert response["Location"] == "/work/"
    device = TOTPDevice.objects.get(user=roles["car"])
    assert device.confirmed and device.key == key
    assert client.get("/work/").status_code == 200


def test_a_wrong_code_at_enrolment_is_refused_with_a_message_and_keeps_nothing(roles):
    client = signed_in(roles["car"])
    client.get(ENROL)
    key = client.session[PENDING_KEY_SESSION]

    response = client.post(ENROL, {"token": wrong(key)})

    assert response.status_code == 400
    assert "That code does not match" in response.content.decode()
    assert not TOTPDevice.objects.exists()
    assert client.session[PENDING_KEY_SESSION] == key  # the same secret: the app keeps it
    assert redirect_target(client.get("/work/"))[0] == ENROL


def test_car_with_a_device_is_sent_to_verify_and_a_valid_code_lets_them_in(roles):
    device = enrolled(roles["car"])
    client = signed_in(roles["car"])

    assert redirect_target(client.get("/work/")) == (VERIFY, ["/work/"])
    assert redirect_target(client.get(reverse("case_list"))) == (VERIFY, ["/cases/"])
    session_before = client.session.session_key

    response = client.post(VERIFY, {"token": code(device.key), "next": "/work/"})

    assert response.status_code == 302
    assert response["Location"] == "/work/"
    assert client.get("/work/").status_code == 200
    assert client.get(reverse("case_list")).status_code == 200
    assert client.session.session_key != session_before  # a new key with the new privilege


def test_a_wrong_code_is_refused_with_a_message(roles):
    device = enrolled(roles["car"])
    client = signed_in(roles["car"])

    response = client.post(VERIFY, {"token": wrong(device.key), "next": "/work/"})

    assert response.status_code == 400
    assert "That code is not right" in response.content.decode()
    assert redirect_target(client.get("/work/"))[0] == VERIFY


@pytest.mark.parametrize("token", ["", "12345", "1234567", "abcdef", "12 34 5x", "1" * 5000])
def test_what_is_not_six_digits_is_refused_with_a_message(roles, token):
    enrolled(roles["car"])
    client = signed_in(roles["car"])
    response = client.post(VERIFY, {"token": token})
    assert response.status_code == 400
    page = response.content.decode()
    assert "Enter the 6-digit code" in page or "This field is required" in page


def test_a_code_with_spaces_is_accepted(roles):
    device = enrolled(roles["car"])
    client = signed_in(roles["car"])
    token = code(device.key)
    assert client.post(VERIFY, {"token": f" {token[:3]} {token[3:]} "}).status_code == 302


def test_a_code_cannot_be_used_twice(roles):
    device = enrolled(roles["car"])
    token = code(device.key)
    assert signed_in(roles["car"]).post(VERIFY, {"token": token}).status_code == 302
    assert signed_in(roles["car"]).post(VERIFY, {"token": token}).status_code == 400


def test_after_several_wrong_codes_the_message_says_to_wait(roles):
    device = enrolled(roles["car"])
    client = signed_in(roles["car"])
    for _ in range(2):
        client.post(VERIFY, {"token": wrong(device.key)})
    response = client.post(VERIFY, {"token": code(device.key)})
    # Refused: django-otp's wait after wrong codes holds even for the right one.
    assert response.status_code == 400
    assert "After 1 wrong code in a row, wait 1 s before the next try" in response.content.decode()


def test_the_full_login_goes_password_then_code_then_the_page(roles):
    device = enrolled(roles["car"])
    client = Client()
    response = client.post(reverse("login"), {"username": "car", "password": "pw"})
    assert response["Location"] == "/work/"
    assert redirect_target(client.get("/work/")) == (VERIFY, ["/work/"])
    assert client.post(VERIFY, {"token": code(device.key), "next": "/work/"}).status_code == 302
    assert client.get("/work/").status_code == 200


def test_staff_and_superusers_need_it_for_the_admin_too():
    for user in (
        UserFactory(username="staff", is_staff=True),
        UserFactory(username="root", is_staff=True, is_superuser=True),
    ):
        client = signed_in(user)
        assert redirect_target(client.get(reverse("admin:index")))[0] == ENROL
        assert redirect_target(client.get("/work/"))[0] == ENROL


def test_roles_not_named_are_not_asked(roles):
    for name in ("cam", "salesops", "portaladmin", "manager", "nobody"):
        assert signed_in(roles[name]).get("/work/").status_code == 200


def test_it_is_off_unless_configured(roles):
    with override_settings(PARTNEROPS_REQUIRE_2FA_FOR=[]):
        assert signed_in(roles["car"]).get("/work/").status_code == 200


def test_a_post_while_unverified_changes_nothing_and_is_sent_to_verify(roles):
    from notifications.models import Notification

    enrolled(roles["car"])
    client = signed_in(roles["car"])
    unread = Notification.objects.filter(read_at__isnull=True).count()
    response = client.post(reverse("notifications_read_all"))
    assert redirect_target(response) == (VERIFY, None)  # no `next`: a GET there would be 405
    assert Notification.objects.filter(read_at__isnull=True).count() == unread


def test_an_htmx_request_is_redirected_by_htmx(roles):
    enrolled(roles["car"])
    response = signed_in(roles["car"]).get("/work/", HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert urlsplit(response["HX-Redirect"]).path == VERIFY


def test_logging_out_stays_possible(roles):
    client = signed_in(roles["car"])
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert SESSION_KEY not in client.session


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "javascript:x"])
def test_next_never_leaves_the_site(roles, target):
    device = enrolled(roles["car"])
    response = signed_in(roles["car"]).post(VERIFY, {"token": code(device.key), "next": target})
    assert response["Location"] == reverse("my_work")


def test_enrolling_twice_is_refused(roles):
    enrolled(roles["car"])
    client = signed_in(roles["car"])
    assert redirect_target(client.get(ENROL))[0] == VERIFY


class _Page(HTMLParser):
    """The inputs (by name), the labels' text (by the id they are for) and all the text."""

    def __init__(self, html: str):
        super().__init__()
        self.inputs, self.labels, self.text = {}, {}, []
        self._label_for = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "input" and "name" in attrs:
            self.inputs[attrs["name"]] = attrs
        elif tag == "label":
            self._label_for = attrs.get("for")
            self.labels.setdefault(self._label_for, "")

    def handle_endtag(self, tag):
        if tag == "label":
            self._label_for = None

    def handle_data(self, data):
        self.text.append(data)
        if self._label_for is not None:
            self.labels[self._label_for] += data


def test_the_code_field_is_labelled_and_says_what_is_wrong(roles):
    enrolled(roles["car"])
    client = signed_in(roles["car"])

    page = _Page(client.get(VERIFY).content.decode())
    token = page.inputs["token"]
    assert page.labels[token["id"]].strip().startswith("Code from your authenticator app")
    assert token["autocomplete"] == "one-time-code"
    assert token["inputmode"] == "numeric"
    assert "aria-invalid" not in token

    page = _Page(client.post(VERIFY, {"token": "x"}).content.decode())
    assert page.inputs["token"]["value"] == "x"
    assert page.inputs["token"]["aria-invalid"] == "true"
    assert "Enter the 6-digit code your authenticator app shows." in " ".join(page.text)


def _settings_of(module: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings; "
            "print(settings.PARTNEROPS_REQUIRE_2FA_FOR)",
        ],
        cwd=ROOT,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": module,
            "DJANGO_SECRET_KEY": "a-long-random-test-value-" + "0123456789abcdef" * 4,
            **env,
        },
        capture_output=True,
        text=True,
        check=False,
    )


def test_production_requires_it_for_car_and_admins_by_default(monkeypatch):
    monkeypatch.delenv("PARTNEROPS_REQUIRE_2FA_FOR", raising=False)
    result = _settings_of("partnerops.settings.prod")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['CAR', 'admin']"
    result = _settings_of("partnerops.settings.dev")
    assert result.stdout.strip() == "[]"


def test_an_unknown_role_stops_start_up():
    result = _settings_of("partnerops.settings.prod", PARTNEROPS_REQUIRE_2FA_FOR="CAR,cashier")
    assert result.returncode != 0
    assert "PARTNEROPS_REQUIRE_2FA_FOR: unknown cashier" in result.stderr
