"""Login throttling (django-axes): after 5 wrong passwords an account, and the address they
came from, are locked for 15 minutes; the lockout page says what to do; an admin unlocks."""

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest
import time_machine
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.core.management import call_command
from django.urls import reverse

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parent.parent
OFFICE = "203.0.113.7"
ELSEWHERE = "198.51.100.9"


def attempt(client, username, password, ip=OFFICE, url=None, **extra):
    return client.post(
        url or reverse("login"),
        {"username": username, "password": password},
        REMOTE_ADDR=ip,
        **extra,
    )


def lock(client, username, ip=OFFICE):
    responses = [attempt(client, username, "wrong", ip) for _ in range(settings.AXES_FAILURE_LIMIT)]
    return responses


@pytest.fixture
def cam():
    return UserFactory(username="cam")  # password "pw"


@pytest.fixture
def car():
    return UserFactory(username="car")


def test_configuration_is_five_failures_and_fifteen_minutes():
    assert settings.AXES_FAILURE_LIMIT == 5
    assert dt.timedelta(minutes=15) == settings.AXES_COOLOFF_TIME
    assert settings.AUTHENTICATION_BACKENDS[0] == "axes.backends.AxesStandaloneBackend"
    # Axes' middleware wraps the login view (after authentication) to answer a lockout.
    middleware = settings.MIDDLEWARE
    assert middleware.index("axes.middleware.AxesMiddleware") > middleware.index(
        "django.contrib.auth.middleware.AuthenticationMiddleware"
    )


def test_five_wrong_passwords_lock_and_the_right_one_is_then_refused(client, cam):
    responses = lock(client, "cam")
    for response in responses[:-1]:
        assert response.status_code == 200
        assert "Please enter a correct username and password" in response.content.decode()
    assert responses[-1].status_code == 429

    response = attempt(client, "cam", "pw")

    assert response.status_code == 429
    page = " ".join(response.content.decode().split())
    assert "Log-in paused" in page
    assert "After 5 wrong passwords" in page
    assert "Wait 15 minutes" in page
    assert "Ask a PartnerOps administrator to unlock you" in page
    assert SESSION_KEY not in client.session
    assert client.get(reverse("my_work")).status_code == 302


def test_four_wrong_passwords_do_not_lock(client, cam):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        attempt(client, "cam", "wrong")
    response = attempt(client, "cam", "pw")
    assert response.status_code == 302
    assert response["Location"] == reverse("my_work")


def test_the_admin_login_is_locked_too(client, cam):
    cam.is_staff = True
    cam.save()
    lock(client, "cam")
    response = attempt(client, "cam", "pw", url=reverse("admin:login"))
    assert response.status_code == 429
    assert SESSION_KEY not in client.session


def test_a_locked_account_is_locked_from_any_address(client, cam):
    lock(client, "cam", ip=OFFICE)
    assert attempt(client, "cam", "pw", ip=ELSEWHERE).status_code == 429


def test_another_user_from_the_locked_address_is_refused_but_not_elsewhere(client, cam, car):
    # One machine guessing: its address is locked for every username it tries.
    lock(client, "cam", ip=OFFICE)
    assert attempt(client, "car", "pw", ip=OFFICE).status_code == 429
    response = attempt(client, "car", "pw", ip=ELSEWHERE)
    assert response.status_code == 302
    assert client.session[SESSION_KEY] == str(car.pk)


def test_one_address_guessing_many_usernames_is_locked(client, cam, car):
    for n in range(settings.AXES_FAILURE_LIMIT):
        attempt(client, f"guess{n}", "wrong", ip=OFFICE)
    assert attempt(client, "car", "pw", ip=OFFICE).status_code == 429
    assert attempt(client, "car", "pw", ip=ELSEWHERE).status_code == 302


def test_x_forwarded_for_is_not_trusted_without_a_proxy(client, cam, car):
    # A client choosing its own X-Forwarded-For does not escape the address lock.
    for n in range(settings.AXES_FAILURE_LIMIT):
        attempt(client, f"guess{n}", "wrong", HTTP_X_FORWARDED_FOR=f"10.0.0.{n}")
    assert attempt(client, "car", "pw", HTTP_X_FORWARDED_FOR="10.9.9.9").status_code == 429


@pytest.mark.parametrize(
    "command",
    [("axes_reset",), ("axes_reset_username", "cam"), ("axes_reset_ip", OFFICE)],
    ids=lambda command: command[0],
)
def test_the_reset_commands_unlock(client, cam, command):
    lock(client, "cam")
    assert AccessAttempt.objects.filter(username="cam").exists()
    call_command(*command)
    response = attempt(client, "cam", "pw")
    assert response.status_code == 302
    assert client.session[SESSION_KEY] == str(cam.pk)


def test_the_admin_sees_the_attempt_and_deleting_it_unlocks(client, cam):
    lock(client, "cam")
    admin = UserFactory(username="root", is_staff=True, is_superuser=True)
    admin_client = type(client)()
    admin_client.force_login(admin)
    listing = admin_client.get(reverse("admin:axes_accessattempt_changelist"))
    assert listing.status_code == 200
    assert "cam" in listing.content.decode()
    row = AccessAttempt.objects.get(username="cam")
    confirm = admin_client.post(
        reverse("admin:axes_accessattempt_delete", args=[row.pk]), {"post": "yes"}
    )
    assert confirm.status_code == 302
    assert attempt(client, "cam", "pw").status_code == 302


def test_the_lock_ends_after_the_cool_off(client, cam):
    with time_machine.travel(dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC), tick=False) as clock:
        lock(client, "cam")
        clock.shift(dt.timedelta(minutes=14))
        assert attempt(client, "cam", "pw").status_code == 429
        # That refused try restarted the cool-off: 15 minutes from it, not from the lock.
        clock.shift(dt.timedelta(minutes=14))
        assert attempt(client, "cam", "pw").status_code == 429
        clock.shift(dt.timedelta(minutes=16))
        assert attempt(client, "cam", "pw").status_code == 302


def test_a_successful_login_clears_the_accounts_failures(client, cam):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        attempt(client, "cam", "wrong")
    assert attempt(client, "cam", "pw").status_code == 302
    client.logout()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        attempt(client, "cam", "wrong")
    assert attempt(client, "cam", "pw").status_code == 302


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PARTNEROPS_LOGIN_LOCKOUT_BY", "username,address"),
        ("PARTNEROPS_LOGIN_FAILURE_LIMIT", "0"),
        ("PARTNEROPS_LOGIN_COOLOFF_MINUTES", "soon"),
    ],
)
def test_bad_throttling_settings_stop_start_up(name, value):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "partnerops.settings.dev", name: value}
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert name in result.stderr


def test_a_username_longer_than_any_column_is_a_failed_login_not_a_500(client):
    """Found by the fault suite's form fuzz: axes recorded the whole username in its
    255-character column, and PostgreSQL refused it (a 500)."""
    response = client.post(reverse("login"), {"username": "A" * 100_000, "password": "x"})
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()
