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
    "accounts",
    "partners",
    "payouts",
    "offboarding",
    "notifications",
    "health",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "partnerops.middleware.MalformedInputMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

# Benchmark only (`make bench`): serves the floor page and reports each request's queries
# and its time in Django and in the database in headers (partnerops/bench.py). Off unless
# PARTNEROPS_BENCH_FLOOR is set.
BENCH_FLOOR = env_bool("PARTNEROPS_BENCH_FLOOR", False)
if BENCH_FLOOR:
    MIDDLEWARE = ["partnerops.bench.RequestCostMiddleware", *MIDDLEWARE]

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
                "notifications.context_processors.unread_count",
            ],
            # {% load form_html %}: {{ form|bootstrap_form }}, crispy's markup drawn in Python.
            "libraries": {"form_html": "partnerops.form_html"},
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
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # PostgreSQL's default (4) prices a random read as if from a spinning disk, so with
    # today's SSDs and a cached working set it prefers hash joins over whole tables to
    # index probes: My work read all 5,000 open cases to find one CAM's 30. 1.1 is the
    # usual value for SSD storage; 0 leaves the server's own setting.
    RANDOM_PAGE_COST = env_float("DATABASE_RANDOM_PAGE_COST", 1.1)
    if RANDOM_PAGE_COST < 0:
        raise ImproperlyConfigured(
            f"DATABASE_RANDOM_PAGE_COST={RANDOM_PAGE_COST!r} must be 0 (server default) or more."
        )
    if RANDOM_PAGE_COST:
        db_options = DATABASES["default"].setdefault("OPTIONS", {})
        db_options["options"] = " ".join(
            filter(None, [db_options.get("options"), f"-c random_page_cost={RANDOM_PAGE_COST:g}"])
        )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Django's backend with a user's permissions read in one query rather than two. Its answers
# are final; Django's own backend follows only to keep sessions signed in through it valid.
AUTHENTICATION_BACKENDS = [
    "accounts.backends.ModelBackendOneQuery",
    "django.contrib.auth.backends.ModelBackend",
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
# A row nobody has sent this long after it was due is re-enqueued by the relay; a worker
# holds a row this long while it sends.
OUTBOX_RELAY_AFTER_SECONDS = env_int("PARTNEROPS_OUTBOX_RELAY_AFTER_SECONDS", 120)
OUTBOX_LEASE_SECONDS = env_int("PARTNEROPS_OUTBOX_LEASE_SECONDS", 300)
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
        "schedule": env_int("PARTNEROPS_RELAY_EVERY_SECONDS", 60),
    },
    "daily-digests": {
        "task": "notifications.tasks.send_daily_digests",
        "schedule": 15 * 60,
    },
    "heartbeat": {
        "task": "health.tasks.heartbeat",
        "schedule": env_int("PARTNEROPS_HEARTBEAT_EVERY_SECONDS", 30),
    },
    "payments-after-offboard": {
        "task": "payouts.tasks.report_payments_after_offboard",
        "schedule": 24 * 60 * 60,
    },
}

# ISO 4217 codes the ledger accepts.
PARTNEROPS_CURRENCIES = env_list(
    "PARTNEROPS_CURRENCIES", "USD,EUR,GBP,CAD,AUD,NZD,JPY,CHF,SEK,NOK,DKK,MXN,BRL,INR,SGD"
)

# /healthz calls the worker dead when its last heartbeat is older than this.
HEALTH_WORKER_MAX_AGE_SECONDS = env_int("PARTNEROPS_HEALTH_WORKER_MAX_AGE_SECONDS", 120)
