"""The second factor (TOTP through django-otp): who must pass it, and enrolling a device.

PARTNEROPS_REQUIRE_2FA_FOR names the roles (accounts/roles.py) and "admin" (staff and
superusers) that must; accounts/security.SecondFactorMiddleware sends them to enrol or
verify before any other page.
"""

from base64 import b32encode

import segno
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django_otp import user_has_device
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp.util import random_hex

from .roles import Role, has_role

# The secret offered on the enrolment page, kept in the (server-side) session until the
# user proves with a code that their app holds it: nothing is written before that.
PENDING_KEY_SESSION = "partnerops_totp_pending_key"
DEVICE_NAME = "Authenticator app"


class AlreadyEnrolled(Exception):
    """The user has a confirmed device already; an administrator removes it to re-enrol."""


class WrongCode(Exception):
    """The code does not match the secret (or came too soon after a wrong one)."""


def second_factor_required(user) -> bool:
    required = settings.PARTNEROPS_REQUIRE_2FA_FOR
    if not required or not user.is_authenticated:
        return False
    if "admin" in required and (user.is_staff or user.is_superuser):
        return True
    return any(has_role(user, Role(name)) for name in required if name != "admin")


def has_device(user) -> bool:
    return user_has_device(user, confirmed=True)


def pending_key(session) -> str:
    """The secret being enrolled in this session (40 hex digits, 160 bits, as django-otp)."""
    key = session.get(PENDING_KEY_SESSION)
    if not key:
        key = random_hex(20)
        session[PENDING_KEY_SESSION] = key
    return key


def enrolment_details(user, key: str) -> dict:
    """What an authenticator app needs: the otpauth:// URI, the secret as text (grouped by
    four for typing) and the URI as a QR code (an SVG data: URI drawn here, no service)."""
    device = TOTPDevice(user=user, key=key, name=DEVICE_NAME)
    uri = device.config_url
    secret = b32encode(device.bin_key).decode()
    return {
        "otpauth_uri": uri,
        "secret": " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
        "qr_data_uri": segno.make(uri, error="m").svg_data_uri(scale=4, border=2),
    }


def enrol_totp_device(*, actor, key: str, token: str) -> TOTPDevice:
    """Confirm the pending secret with a code from the app and keep it as the actor's device.

    Raises AlreadyEnrolled or WrongCode; on WrongCode nothing is kept."""
    with transaction.atomic():
        # The user's row lock makes two concurrent enrolments end with one device.
        get_user_model()._default_manager.select_for_update().filter(pk=actor.pk).first()
        if has_device(actor):
            raise AlreadyEnrolled
        device = TOTPDevice.objects.create(user=actor, name=DEVICE_NAME, key=key, confirmed=False)
        if not device.verify_token(token):
            raise WrongCode  # rolls the device back with the transaction
        device.confirmed = True
        device.save(update_fields=["confirmed"])
    return device
