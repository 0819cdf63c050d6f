"""Settings shared by every environment. Environment-specific modules import from here."""

from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from .env import env_bool, env_float, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(env_str("PARTNEROPS_VAR_DIR", str(BASE_DIR / "var")))

SECRET_KEY = env_str("DJANGO_SECRET_KEY", "insecure-development-key-change-me")
DEBUG = env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "crispy_forms",
    "crispy_bootstrap5",
    "django_htmx",
    "django_fsm",
    "bootstrap",
    "core",
    "accounts",
    "partners",
    "payouts",
    "offboarding",
    "notifications",
    "health",
    "ops",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    # Headers only: a body declared beyond REQUEST_MAX_BYTES is a 413 before it is read.
    "partnerops.middleware.RequestSizeLimitMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    # After CSRF and login: it reads a form only once both have let the request through.
    "partnerops.middleware.MalformedInputMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "partnerops.urls"
WSGI_APPLICATION = "partnerops.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.roles",
                "offboarding.context_processors.navigation",
                "notifications.context_processors.unread_count",
            ],
        },
    },
]

# SQLite is the embedded default so a fresh machine needs nothing but Python;
# production and CI point DATABASE_URL at PostgreSQL.
DATABASE_URL = env_str("DATABASE_URL", "")
if not DATABASE_URL:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL or f"sqlite:///{VAR_DIR / 'partnerops.sqlite3'}",
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0),
    )
}
# ---- Database roles (issue 15, item 7): the app's role owns nothing. ----
# DATABASE_URL is the role the web, worker and beat connect as: SELECT/INSERT/UPDATE/DELETE on
# the tables and USAGE on the sequences only, so it cannot TRUNCATE, DROP, ALTER or disable a
# trigger. DATABASE_OWNER_URL (optional, PostgreSQL only) is the role that owns the schema:
# `manage.py migrate --database owner` migrates as it and then grants the app role its rights
# (ops/grants.py). Unset, everything runs as DATABASE_URL, as on SQLite, which has no roles.
DATABASE_OWNER_URL = env_str("DATABASE_OWNER_URL", "")
if DATABASE_OWNER_URL:
    DATABASES["owner"] = dj_database_url.parse(DATABASE_OWNER_URL, conn_max_age=0)
    if DATABASES["owner"]["ENGINE"] != "django.db.backends.postgresql":
        raise ImproperlyConfigured(
            "DATABASE_OWNER_URL must be a postgres:// URL: only PostgreSQL has roles."
        )
    if DATABASES["default"]["ENGINE"] != DATABASES["owner"]["ENGINE"]:
        raise ImproperlyConfigured("DATABASE_OWNER_URL is set but DATABASE_URL is not PostgreSQL.")
    _where = ("HOST", "PORT", "NAME")
    if [DATABASES["owner"].get(k) for k in _where] != [DATABASES["default"].get(k) for k in _where]:
        # Migrating one database and serving another would fail in confusing ways later.
        raise ImproperlyConfigured(
            "DATABASE_OWNER_URL and DATABASE_URL must name the same host, port and database."
        )
    # The owner's connection is only for migrations and grants; tests never use it.
    DATABASES["owner"]["TEST"] = {"MIRROR": "default"}
# `manage.py backup` / `restore` run pg_dump / pg_restore from here (default: the PATH); the
# client must be at least as new as the server.
PG_BIN_DIR = env_str("PARTNEROPS_PG_BIN_DIR", "")
# ---- end of database roles ----

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "my_work"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
USE_I18N = True
USE_TZ = True
# The organisation's business calendar: where "business day" and "cut-off" are read.
# Pages show times in it; the database stores UTC.
ORG_TIME_ZONE = env_str("PARTNEROPS_TIME_ZONE", "America/Los_Angeles")
TIME_ZONE = ORG_TIME_ZONE
ORG_HOLIDAY_COUNTRY = env_str("PARTNEROPS_HOLIDAY_COUNTRY", "US")
ORG_HOLIDAY_SUBDIVISION = env_str("PARTNEROPS_HOLIDAY_SUBDIVISION", "") or None
ORG_BUSINESS_DAY_CUTOFF = env_str("PARTNEROPS_BUSINESS_DAY_CUTOFF", "17:00")
# Reminders go out this long before a step falls due (business-day steps / notice steps).
REMINDER_LEAD_HOURS = env_int("PARTNEROPS_REMINDER_LEAD_HOURS", 4)
REMINDER_LEAD_DAYS_NOTICE = env_int("PARTNEROPS_REMINDER_LEAD_DAYS_NOTICE", 3)
# Each person's daily digest goes out at this local hour (organisation time zone).
DIGEST_HOUR = env_int("PARTNEROPS_DIGEST_HOUR", 7)
# Links in emails point here.
SITE_URL = env_str("PARTNEROPS_SITE_URL", "http://127.0.0.1:8000").rstrip("/")

STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("DJANGO_STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
MEDIA_ROOT = Path(env_str("DJANGO_MEDIA_ROOT", str(VAR_DIR / "media")))
MEDIA_URL = "media/"

# Evidence uploads: what a legal document or a resignation email may be.
EVIDENCE_MAX_BYTES = env_int("PARTNEROPS_EVIDENCE_MAX_BYTES", 10 * 1024 * 1024)
EVIDENCE_EXTENSIONS = env_list(
    "PARTNEROPS_EVIDENCE_EXTENSIONS", "pdf,png,jpg,jpeg,txt,eml,msg,doc,docx,odt"
)
DATA_UPLOAD_MAX_MEMORY_SIZE = EVIDENCE_MAX_BYTES + 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440

# ---- Issue 15, edges (helper C): the largest request body, refused from its headers ----
# partnerops.middleware.RequestSizeLimitMiddleware answers 413 to a Content-Length beyond
# this before reading a byte. A step may carry several evidence files, each up to
# EVIDENCE_MAX_BYTES: the default lets five at the limit through with the form around them.
# Set a proxy's limit (nginx client_max_body_size) to the same figure.
REQUEST_MAX_BYTES = env_int("PARTNEROPS_REQUEST_MAX_BYTES", 5 * EVIDENCE_MAX_BYTES + 1024 * 1024)
if REQUEST_MAX_BYTES < DATA_UPLOAD_MAX_MEMORY_SIZE:
    raise ImproperlyConfigured(
        f"PARTNEROPS_REQUEST_MAX_BYTES ({REQUEST_MAX_BYTES}) must be at least an evidence "
        f"file's limit and the form around it ({DATA_UPLOAD_MAX_MEMORY_SIZE} bytes)."
    )

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

EMAIL_BACKEND = env_str("DJANGO_EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env_str("DJANGO_DEFAULT_FROM_EMAIL", "partnerops@localhost")

# Celery: Redis when REDIS_URL is set, otherwise kombu's filesystem transport so a machine
# with nothing but Python still runs the same tasks through a real worker.
REDIS_URL = env_str("REDIS_URL", "")
CELERY_BROKER_URL = REDIS_URL or "filesystem://"
_CELERY_QUEUE_DIR = VAR_DIR / "celery-broker"
# Redis redelivers an unacknowledged message after the visibility timeout: it must be
# longer than the longest countdown (EMAIL_RETRY_MAX_SECONDS) or a retry runs twice.
CELERY_BROKER_TRANSPORT_OPTIONS = (
    {"visibility_timeout": 6 * 60 * 60, "socket_connect_timeout": 3, "socket_timeout": 10}
    if REDIS_URL
    else {
        "data_folder_in": str(_CELERY_QUEUE_DIR),
        "data_folder_out": str(_CELERY_QUEUE_DIR),
        "processed_folder": str(VAR_DIR / "celery-processed"),
        "control_folder": str(VAR_DIR / "celery-control"),
        "store_processed": False,
        "polling_interval": 0.2,
    }
)
if not REDIS_URL:
    _CELERY_QUEUE_DIR.mkdir(parents=True, exist_ok=True)
    (VAR_DIR / "celery-processed").mkdir(parents=True, exist_ok=True)
# The cache (the inbox's counts, notifications.selectors) is Django's default, each process's
# own memory: never Redis, so a broker outage cannot fail a click that notifies someone.
# A count another process cached may lag its inbox by INBOX_COUNT_SECONDS at most.
CELERY_TIMEZONE = "UTC"
CELERY_ENABLE_UTC = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_TASK_TIME_LIMIT = 300
CELERY_TASK_SOFT_TIME_LIMIT = 240
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("DJANGO_LOG_LEVEL", "INFO")},
}

# Email delivery from the notification outbox.
EMAIL_MAX_ATTEMPTS = env_int("PARTNEROPS_EMAIL_MAX_ATTEMPTS", 6)
EMAIL_RETRY_BASE_SECONDS = env_int("PARTNEROPS_EMAIL_RETRY_BASE_SECONDS", 30)
EMAIL_RETRY_MAX_SECONDS = env_int("PARTNEROPS_EMAIL_RETRY_MAX_SECONDS", 3600)
# A row nobody has sent this long after it was due is re-enqueued by the relay (a dead worker
# may have reserved its message without claiming the row); a worker holds a row this long
# while it sends (the relay reclaims it as soon as that runs out: the lease outlasts the
# send's hard time limit, OUTBOX_SEND_TIME_LIMIT_SECONDS). Issue 15 item 2: either way a dead
# worker's email is back within this + PARTNEROPS_RELAY_EVERY_SECONDS, 75 s.
OUTBOX_RELAY_AFTER_SECONDS = env_int("PARTNEROPS_OUTBOX_RELAY_AFTER_SECONDS", 45)
OUTBOX_LEASE_SECONDS = env_int("PARTNEROPS_OUTBOX_LEASE_SECONDS", 45)
EMAIL_TIMEOUT = env_int("DJANGO_EMAIL_TIMEOUT", 20)
EMAIL_HOST = env_str("DJANGO_EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("DJANGO_EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("DJANGO_EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("DJANGO_EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("DJANGO_EMAIL_USE_TLS", False)

# Every periodic job, in one place. Beat runs in UTC; jobs that care about local time
# (the digest) read the organisation's calendar themselves.
CELERY_BEAT_SCHEDULE = {
    "sweep-deadlines": {
        "task": "offboarding.tasks.sweep_deadlines",
        "schedule": env_int("PARTNEROPS_SWEEP_EVERY_SECONDS", 60),
    },
    "relay-outbox": {
        "task": "notifications.tasks.relay_outbox",
        # A dead worker's row is reclaimed within lease + this (issue 15 item 2).
        "schedule": env_int("PARTNEROPS_RELAY_EVERY_SECONDS", 30),
    },
    "daily-digests": {
        "task": "offboarding.tasks.send_daily_digests",
        "schedule": 15 * 60,
    },
    "heartbeat": {
        "task": "health.tasks.heartbeat",
        "schedule": env_int("PARTNEROPS_HEARTBEAT_EVERY_SECONDS", 30),
    },
    "payments-after-offboard": {
        "task": "offboarding.tasks.report_payments_after_offboard",
        "schedule": 24 * 60 * 60,
    },
}

# ISO 4217 codes the ledger accepts.
PARTNEROPS_CURRENCIES = env_list(
    "PARTNEROPS_CURRENCIES", "USD,EUR,GBP,CAD,AUD,NZD,JPY,CHF,SEK,NOK,DKK,MXN,BRL,INR,SGD"
)

# /healthz calls the worker dead when its last heartbeat is older than this.
HEALTH_WORKER_MAX_AGE_SECONDS = env_int("PARTNEROPS_HEALTH_WORKER_MAX_AGE_SECONDS", 120)

# ---- Login throttling, security headers, sessions, second factor (issue 15, items 3, 4, 7;
# accounts/security.py, accounts/two_factor.py). ----
from datetime import timedelta  # noqa: E402

from csp.constants import NONE, SELF  # noqa: E402

from accounts.roles import Role  # noqa: E402  (a plain enum: importing it loads no model)

INSTALLED_APPS += [
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "csp",
]


def _after(middleware: str, *added: str) -> None:
    MIDDLEWARE[MIDDLEWARE.index(middleware) + 1 : MIDDLEWARE.index(middleware) + 1] = added


_after(
    "django.middleware.security.SecurityMiddleware",
    "django_permissions_policy.PermissionsPolicyMiddleware",
    "csp.middleware.CSPMiddleware",
)
_after(
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # request.user.is_verified(): whether this session passed the second factor.
    "django_otp.middleware.OTPMiddleware",
    # Idle and absolute session limits, before anything acts for the session's user.
    "accounts.security.SessionTimeoutMiddleware",
)
_after(
    "django.contrib.messages.middleware.MessageMiddleware",
    "accounts.security.SecondFactorMiddleware",
    "accounts.security.NoStoreForAuthenticatedMiddleware",
)
# axes: last, as its documentation asks; it turns a locked-out login into the lockout page.
MIDDLEWARE.append("axes.middleware.AxesMiddleware")

# Axes' backend first: it refuses a locked-out login before any password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("PARTNEROPS_LOGIN_FAILURE_LIMIT", 5)
_cooloff_minutes = env_int("PARTNEROPS_LOGIN_COOLOFF_MINUTES", 15)
AXES_COOLOFF_TIME = timedelta(minutes=_cooloff_minutes)
if AXES_FAILURE_LIMIT < 1 or _cooloff_minutes < 1:
    raise ImproperlyConfigured(
        "PARTNEROPS_LOGIN_FAILURE_LIMIT and PARTNEROPS_LOGIN_COOLOFF_MINUTES must be 1 or more."
    )
# A username is locked whatever address tries it, and an address whatever username it
# tries (one machine guessing many accounts). "username+ip_address" would count the pair.
_lockout_by = env_list("PARTNEROPS_LOGIN_LOCKOUT_BY", "username,ip_address")
AXES_LOCKOUT_PARAMETERS = [item.split("+") if "+" in item else item for item in _lockout_by]
_lockout_parts = {part for item in _lockout_by for part in item.split("+")}
if not _lockout_by or not _lockout_parts <= {"username", "ip_address", "user_agent"}:
    raise ImproperlyConfigured(
        "PARTNEROPS_LOGIN_LOCKOUT_BY: comma-separated items of username, ip_address, "
        "user_agent, joined by + to count a combination (e.g. username,ip_address)."
    )
# The address is the connection's unless a proxy in front is trusted to append it to
# X-Forwarded-For: trusting that header without a proxy lets anyone choose their address.
AXES_IPWARE_PROXY_COUNT = env_int("PARTNEROPS_LOGIN_TRUSTED_PROXIES", 0)
AXES_IPWARE_META_PRECEDENCE_ORDER = (
    ("HTTP_X_FORWARDED_FOR", "REMOTE_ADDR") if AXES_IPWARE_PROXY_COUNT else ("REMOTE_ADDR",)
)
# A correct password clears that account's failures: typos days apart never add up.
AXES_RESET_ON_SUCCESS = True
# The lockout page (templates/accounts/lockout.html), status 429.
AXES_LOCKOUT_CALLABLE = "accounts.security.lockout_response"
AXES_USERNAME_CALLABLE = "accounts.security.axes_username"
# Failed attempts are kept (admin: Axes → Access failures); successful logins are not
# worth a row each.
AXES_DISABLE_ACCESS_LOG = True
AXES_ENABLE_ACCESS_FAILURE_LOG = True

# Content-Security-Policy: the app's own static files only. No inline script or style, no
# eval; images may also be data: URIs (Bootstrap's CSS draws its icons with them).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}
# Every powerful browser feature off: the app uses none of them.
PERMISSIONS_POLICY = {
    feature: []
    for feature in (
        "accelerometer",
        "autoplay",
        "camera",
        "display-capture",
        "encrypted-media",
        "fullscreen",
        "geolocation",
        "gyroscope",
        "magnetometer",
        "microphone",
        "midi",
        "payment",
        "picture-in-picture",
        "publickey-credentials-get",
        "screen-wake-lock",
        "usb",
        "xr-spatial-tracking",
    )
}

# Sessions end after this long without a request, and at the latest this long after login
# (accounts/security.py); the cookie lasts no longer than the latter.
SESSION_IDLE_SECONDS = 60 * env_int("PARTNEROPS_SESSION_IDLE_MINUTES", 30)
SESSION_MAX_SECONDS = 60 * 60 * env_int("PARTNEROPS_SESSION_MAX_HOURS", 12)
if not 0 < SESSION_IDLE_SECONDS <= SESSION_MAX_SECONDS:
    raise ImproperlyConfigured(
        "PARTNEROPS_SESSION_IDLE_MINUTES must be 1 or more and no longer than "
        "PARTNEROPS_SESSION_MAX_HOURS."
    )
SESSION_COOKIE_AGE = SESSION_MAX_SECONDS


def second_factor_roles(names: list[str]) -> list[str]:
    """PARTNEROPS_REQUIRE_2FA_FOR's items, checked: role names (accounts/roles.py) or
    "admin" (staff and superusers)."""
    known = {"admin", *(role.value for role in Role)}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ImproperlyConfigured(
            f"PARTNEROPS_REQUIRE_2FA_FOR: unknown {', '.join(unknown)}; "
            f"use any of {', '.join(sorted(known))}."
        )
    return names


# Who must pass a TOTP second factor after the password. Off here, in development and in
# tests (which switch it on where they test it); production defaults to CAR and admins.
PARTNEROPS_REQUIRE_2FA_FOR = second_factor_roles(env_list("PARTNEROPS_REQUIRE_2FA_FOR", ""))
# The issuer shown in the authenticator app next to the account name.
OTP_TOTP_ISSUER = env_str("PARTNEROPS_2FA_ISSUER", "PartnerOps")
# Admin lists devices (to remove a lost one) without showing their secrets.
OTP_ADMIN_HIDE_SENSITIVE_DATA = True
# ---- end of login throttling, security headers, sessions, second factor ----

# ---- Broker outages, worker recovery and the worker alarm (issue 15, items 1, 2, 7;
# notifications/broker.py, notifications/tasks.py, health/alarm.py). ----
# A publish from a request gets one connection attempt and this long to connect and to be
# answered; after a failure the broker is skipped for BROKER_BREAKER_SECONDS in that process
# and the outbox relay delivers what was left pending.
BROKER_PUBLISH_TIMEOUT_SECONDS = env_float("PARTNEROPS_BROKER_PUBLISH_TIMEOUT_SECONDS", 0.3)
BROKER_BREAKER_SECONDS = env_int("PARTNEROPS_BROKER_BREAKER_SECONDS", 30)
if not 0 < BROKER_PUBLISH_TIMEOUT_SECONDS <= 5:
    raise ImproperlyConfigured(
        "PARTNEROPS_BROKER_PUBLISH_TIMEOUT_SECONDS must be more than 0 and at most 5: "
        "a request waits this long when the broker is down."
    )
if BROKER_BREAKER_SECONDS < 0:
    raise ImproperlyConfigured("PARTNEROPS_BROKER_BREAKER_SECONDS must be 0 or more.")
# The email task's hard time limit (its soft limit is 5 s earlier). It must stay below
# OUTBOX_LEASE_SECONDS, or the relay could hand a row a live worker is still sending to
# another worker; `manage.py check` says so (notifications.E001).
OUTBOX_SEND_TIME_LIMIT_SECONDS = env_int("PARTNEROPS_OUTBOX_SEND_TIME_LIMIT_SECONDS", 30)
# The web processes tell the managers and superusers (in-app and by email, without the
# worker) when the worker's heartbeat has been missing this long, and again when it is back.
# Each web process looks at most every WORKER_ALARM_CHECK_EVERY_SECONDS, all of them together
# once in that time; the alarm's email gets WORKER_ALARM_EMAIL_TIMEOUT_SECONDS per SMTP step.
WORKER_ALARM_ENABLED = env_bool("PARTNEROPS_WORKER_ALARM", True)
WORKER_ALARM_AFTER_SECONDS = env_int("PARTNEROPS_WORKER_ALARM_AFTER_SECONDS", 180)
WORKER_ALARM_CHECK_EVERY_SECONDS = env_int("PARTNEROPS_WORKER_ALARM_CHECK_EVERY_SECONDS", 60)
WORKER_ALARM_EMAIL_TIMEOUT_SECONDS = env_int("PARTNEROPS_WORKER_ALARM_EMAIL_TIMEOUT_SECONDS", 5)
if min(WORKER_ALARM_AFTER_SECONDS, WORKER_ALARM_CHECK_EVERY_SECONDS) < 1:
    raise ImproperlyConfigured(
        "PARTNEROPS_WORKER_ALARM_AFTER_SECONDS and _CHECK_EVERY_SECONDS must be 1 or more."
    )
if WORKER_ALARM_EMAIL_TIMEOUT_SECONDS < 1:
    raise ImproperlyConfigured("PARTNEROPS_WORKER_ALARM_EMAIL_TIMEOUT_SECONDS must be 1 or more.")
# Innermost: it looks after the view has answered, and never changes the response.
MIDDLEWARE += ["health.alarm.WorkerAlarmMiddleware"]
# ---- end of broker outages, worker recovery and the worker alarm ----
