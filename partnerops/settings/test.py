"""The test suite. The database comes from DATABASE_URL (PostgreSQL in CI); SQLite otherwise."""

from .base import *  # noqa: F403

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
CELERY_TASK_ALWAYS_EAGER = True
# Tests serve static files from the apps (finders); nothing is collected.
STATIC_ROOT = None
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
# The worker alarm (health/alarm.py) would otherwise add its queries to whichever request
# falls on its minute; tests/test_worker_alarm.py switches it on where it tests it.
WORKER_ALARM_ENABLED = False
# Each test process keeps its own cache (emptied before each test, tests/conftest.py):
# a count cached by an earlier run must not meet a new test database's reused ids.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
