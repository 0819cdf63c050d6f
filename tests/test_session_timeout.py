"""Sessions end after 30 minutes without a request and 12 hours after login at the latest."""

import datetime as dt
from urllib.parse import parse_qs, urlsplit

import pytest
import time_machine
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.test import override_settings
from django.urls import reverse

from accounts.security import SESSION_SEEN, SESSION_STARTED
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
START = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def clock():
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


@pytest.fixture
def user_client(client, clock):
    client.force_login(UserFactory(username="cam"))
    return client


def assert_signed_out(client, response, why):
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert location.path == reverse("login")
    assert parse_qs(location.query)["next"] == ["/work/"]
    assert SESSION_KEY not in client.session
    login_page = client.get(response["Location"])
    assert f"You were logged out {why}. Log in again to continue." in login_page.content.decode()


def test_defaults_are_thirty_minutes_and_twelve_hours():
    assert settings.SESSION_IDLE_SECONDS == 30 * 60
    assert settings.SESSION_MAX_SECONDS == 12 * 60 * 60
    assert settings.SESSION_COOKIE_AGE == settings.SESSION_MAX_SECONDS


def test_a_request_within_the_idle_limit_keeps_the_session(user_client, clock):
    for _ in range(3):
        clock.shift(dt.timedelta(minutes=29))
        assert user_client.get("/work/").status_code == 200


def test_thirty_minutes_idle_signs_out_with_a_message(user_client, clock):
    assert user_client.get("/work/").status_code == 200
    clock.shift(dt.timedelta(minutes=30, seconds=1))
    assert_signed_out(user_client, user_client.get("/work/"), "after 30 minutes idle")


def test_an_active_session_still_ends_twelve_hours_after_login(user_client, clock):
    for _ in range(12 * 3):
        clock.shift(dt.timedelta(minutes=20))
        assert user_client.get("/work/").status_code == 200
    clock.shift(dt.timedelta(minutes=1))
    assert_signed_out(user_client, user_client.get("/work/"), "12 hours after you logged in")


def test_the_last_request_time_is_written_at_most_once_a_minute(user_client, clock):
    seen = user_client.session[SESSION_SEEN]
    clock.shift(dt.timedelta(seconds=59))
    user_client.get("/work/")
    assert user_client.session[SESSION_SEEN] == seen
    clock.shift(dt.timedelta(seconds=1))
    user_client.get("/work/")
    assert user_client.session[SESSION_SEEN] == seen + 60
    assert user_client.session[SESSION_STARTED] == seen


def test_a_session_from_before_the_limits_gets_them_from_its_next_request(user_client, clock):
    session = user_client.session
    del session[SESSION_STARTED]
    del session[SESSION_SEEN]
    session.save()
    assert user_client.get("/work/").status_code == 200
    clock.shift(dt.timedelta(minutes=31))
    assert user_client.get("/work/").status_code == 302


@override_settings(SESSION_IDLE_SECONDS=5 * 60)
def test_the_limit_follows_the_setting(user_client, clock):
    clock.shift(dt.timedelta(minutes=5, seconds=1))
    assert_signed_out(user_client, user_client.get("/work/"), "after 5 minutes idle")


def test_a_real_login_starts_the_clock(client, clock):
    UserFactory(username="cam")
    client.post(reverse("login"), {"username": "cam", "password": "pw"})
    assert client.session[SESSION_STARTED] == int(START.timestamp())
    clock.shift(dt.timedelta(minutes=31))
    assert client.get("/work/").status_code == 302
