"""The second factor's two pages: enrol an authenticator app, and verify a code after login."""

import math
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.shortcuts import redirect, render, resolve_url
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django_otp import devices_for_user, match_token
from django_otp import login as otp_login

from .forms import TokenForm
from .two_factor import (
    PENDING_KEY_SESSION,
    AlreadyEnrolled,
    WrongCode,
    enrol_totp_device,
    enrolment_details,
    has_device,
    pending_key,
)


def _next_url(request) -> str:
    """Where to go once verified: `next` if it is a page of this site, else My work."""
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return resolve_url(settings.LOGIN_REDIRECT_URL)


def _with_next(view_name: str, request) -> str:
    return f"{resolve_url(view_name)}?{urlencode({'next': _next_url(request)})}"


def _verified(request, device):
    # A new session key when the session gains the second factor, as at login.
    request.session.cycle_key()
    otp_login(request, device)


def two_factor_enrol(request):
    """GET: the secret to add to an authenticator app. POST: a code from the app confirms it."""
    if has_device(request.user):
        messages.info(request, "You already have an authenticator app set up.")
        return redirect(_with_next("two_factor_verify", request))
    key = pending_key(request.session)
    form = TokenForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                device = enrol_totp_device(
                    actor=request.user, key=key, token=form.cleaned_data["token"]
                )
            except AlreadyEnrolled:
                messages.info(request, "You already have an authenticator app set up.")
                return redirect("two_factor_verify")
            except WrongCode:
                form.add_error(
                    "token",
                    "That code does not match. Check that the app shows PartnerOps with your "
                    "username, and enter the code it shows now.",
                )
            else:
                del request.session[PENDING_KEY_SESSION]
                _verified(request, device)
                messages.success(request, "Your authenticator app is set up.")
                return redirect(_next_url(request))
        status = 400
    context = {"form": form, "next": _next_url(request), **enrolment_details(request.user, key)}
    return render(request, "accounts/two_factor_enrol.html", context, status=status)


def two_factor_verify(request):
    """After the password: a code from the user's authenticator app."""
    if request.user.is_verified():
        return redirect(_next_url(request))
    if not has_device(request.user):
        return redirect(_with_next("two_factor_enrol", request))
    form = TokenForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            device = match_token(request.user, form.cleaned_data["token"])
            if device is not None:
                _verified(request, device)
                return redirect(_next_url(request))
            form.add_error("token", _refusal(request.user))
        status = 400
    return render(
        request,
        "accounts/two_factor_verify.html",
        {"form": form, "next": _next_url(request)},
        status=status,
    )


def _refusal(user) -> str:
    message = "That code is not right. Enter the code your app shows now (it changes every 30 s)."
    # django-otp makes each try after a wrong code wait longer (1 s, 2 s, 4 s, …), and a
    # code sent during the wait is refused even if right: say how long.
    for device in devices_for_user(user, confirmed=True):
        allowed, details = device.verify_is_allowed()
        if not allowed and details and details.get("locked_until"):
            wait = math.ceil((details["locked_until"] - timezone.now()).total_seconds())
            failures = details.get("failure_count", 1)
            message += (
                f" After {failures} wrong code{'s' * (failures > 1)} in a row, wait "
                f"{max(wait, 1)} s before the next try."
            )
    return message
