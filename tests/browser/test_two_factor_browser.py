"""The second factor in the browser: a CAR user enrols an authenticator app after the
password (the secret read off the page, the QR code shown under the CSP), then logs in
again with a code."""

import base64

import pytest
from django.test import override_settings
from django_otp.oath import totp
from playwright.sync_api import expect

from tests.browser.test_csp import WATCH_JS, csp_problems
from tests.browser.ui import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def app_code(secret_text: str) -> str:
    """What the user's app shows for the secret as the page prints it (groups of four)."""
    return f"{totp(base64.b32decode(secret_text.replace(' ', ''))):06d}"


def password_login(ui, username):
    page = ui.page
    ui.open("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


@override_settings(PARTNEROPS_REQUIRE_2FA_FOR=["CAR", "admin"])
def test_car_enrols_then_logs_in_with_a_code(ui, people):
    page = ui.page
    console = []
    page.on("console", lambda message: console.append((message.type, message.text)))
    page.add_init_script(WATCH_JS)

    password_login(ui, "car")
    expect(ui.heading()).to_have_text("Set up two-factor authentication")
    ui.check()
    qr = page.get_by_role("img", name="QR code of the setup link below")
    expect(qr).to_be_visible()
    assert page.evaluate("(img) => img.naturalWidth > 0", qr.element_handle())  # it drew
    secret = page.locator("#totp-secret").inner_text()

    ui.field("Code from your authenticator app").fill("000000")
    page.get_by_role("button", name="Confirm and continue").click()
    expect(page.locator(".invalid-feedback")).to_contain_text("That code does not match")
    ui.field("Code from your authenticator app").fill(app_code(secret))
    page.get_by_role("button", name="Confirm and continue").click()
    expect(ui.heading()).to_have_text("My work")
    ui.message("Your authenticator app is set up.")
    assert csp_problems(page, console) == []

    ui.user = "car"
    ui.logout()
    password_login(ui, "car")
    expect(ui.heading()).to_have_text("Enter your code")
    ui.check()
    # The code of the next 30 s step: the one just used at enrolment is not accepted twice.
    next_code = f"{totp(base64.b32decode(secret.replace(' ', '')), drift=1):06d}"
    ui.field("Code from your authenticator app").fill(next_code)
    page.get_by_role("button", name="Verify").click()
    expect(ui.heading()).to_have_text("My work")
