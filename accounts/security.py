"""Session limits, the second-factor gate, no-store for signed-in pages, the lockout page.

Each middleware reads its settings per request, so tests can switch them with
override_settings. Their places in MIDDLEWARE are set in partnerops/settings/base.py.
"""

import time
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import auth, messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import patch_cache_control
from django_htmx.http import HttpResponseClientRedirect

from .two_factor import has_device, second_factor_required

SESSION_STARTED = "partnerops_session_started"
SESSION_SEEN = "partnerops_session_seen"
# The last request's time is written at most this often, so a busy user's clicks do not
# each rewrite the session row; the idle limit is therefore exact to within a minute.
SEEN_GRANULARITY_SECONDS = 60


def stamp_session(sender, request, user, **kwargs):
    """At login (user_logged_in): the session's start, from which both limits count."""
    if request is not None and hasattr(request, "session"):
        now = int(time.time())
        request.session[SESSION_STARTED] = now
        request.session[SESSION_SEEN] = now


class SessionTimeoutMiddleware:
    """Sign a session out after SESSION_IDLE_SECONDS without a request, or
    SESSION_MAX_SECONDS after login, whichever comes first, and say so on the login page.

    Works in process_view: that runs after MessageMiddleware has set up messages and before
    LoginRequiredMiddleware, which then sends the signed-out request to the login page."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        session = request.session
        if auth.SESSION_KEY not in session:  # nobody signed in: nothing to time out
            return None
        now = int(time.time())
        started, seen = session.get(SESSION_STARTED), session.get(SESSION_SEEN)
        if not isinstance(started, int) or not isinstance(seen, int):
            # Signed in before these limits existed: they count from now.
            session[SESSION_STARTED] = session[SESSION_SEEN] = now
        elif now - seen > settings.SESSION_IDLE_SECONDS:
            self._end(request, f"after {settings.SESSION_IDLE_SECONDS // 60} minutes idle")
        elif now - started > settings.SESSION_MAX_SECONDS:
            self._end(request, f"{settings.SESSION_MAX_SECONDS // 3600} hours after you logged in")
        elif now - seen >= SEEN_GRANULARITY_SECONDS:
            session[SESSION_SEEN] = now
        return None

    @staticmethod
    def _end(request, when: str) -> None:
        auth.logout(request)
        messages.info(request, f"You were logged out {when}. Log in again to continue.")


# Pages a user who owes the second factor may still open: the two steps themselves and
# logging out.
SECOND_FACTOR_VIEWS = {"two_factor_enrol", "two_factor_verify", "logout", "admin:logout"}


class SecondFactorMiddleware:
    """A user PARTNEROPS_REQUIRE_2FA_FOR names, signed in with a password only, is sent to
    verify a code (or to enrol a device first) before any page that needs a login."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        if not settings.PARTNEROPS_REQUIRE_2FA_FOR:
            return None
        if not getattr(view_func, "login_required", True):  # login page, health check
            return None
        user = request.user
        if not user.is_authenticated or user.is_verified() or not second_factor_required(user):
            return None
        if request.resolver_match.view_name in SECOND_FACTOR_VIEWS:
            return None
        target = reverse("two_factor_verify" if has_device(user) else "two_factor_enrol")
        if request.method in ("GET", "HEAD"):
            # Back to this page afterwards; a POST's target would answer a GET with 405.
            target = f"{target}?{urlencode({'next': request.get_full_path()})}"
        if request.htmx:
            return HttpResponseClientRedirect(target)
        return redirect(target)


class NoStoreForAuthenticatedMiddleware:
    """`Cache-Control: no-store, private` on every response to a signed-in user, so neither a
    shared cache nor the browser's back button keeps a copy of a page with partners' money
    after logout. Static files never reach this: WhiteNoise serves them further up."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            patch_cache_control(response, no_store=True, private=True)
        return response


def lockout_response(request, original_response=None, credentials=None):
    """django-axes' answer to a locked-out login (AXES_LOCKOUT_CALLABLE): what happened and
    what to do, with the wait in minutes."""
    return render(
        request,
        "accounts/lockout.html",
        {
            "failure_limit": settings.AXES_FAILURE_LIMIT,
            "cooloff_minutes": int(settings.AXES_COOLOFF_TIME.total_seconds() // 60),
        },
        status=429,
    )


# django-axes stores the username a failed login gave in a 255-character column; a longer
# one (no account has it: usernames are at most 150) would end the login as a 500.
AXES_USERNAME_MAX = 255


def axes_username(request, credentials=None) -> str | None:
    """The username axes records for a login attempt, cut to what its table holds."""
    source = credentials if credentials else getattr(request, "POST", {})
    username = source.get("username") if source else None
    return username[:AXES_USERNAME_MAX] if isinstance(username, str) else username
