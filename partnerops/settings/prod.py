"""Production: every secret from the environment, HTTPS assumed behind a proxy."""

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import SECRET_KEY, second_factor_roles
from .env import env_bool, env_int, env_list

DEBUG = False
# Persistent connections: opening one costs more than most of our page queries.
DATABASES["default"]["CONN_MAX_AGE"] = env_int("DATABASE_CONN_MAX_AGE", 60)  # noqa: F405
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True  # noqa: F405
if SECRET_KEY.startswith("insecure-"):
    raise ImproperlyConfigured("Set DJANGO_SECRET_KEY to a long random value in production.")

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
SESSION_COOKIE_SECURE = env_bool("DJANGO_SESSION_COOKIE_SECURE", True)
CSRF_COOKIE_SECURE = env_bool("DJANGO_CSRF_COOKIE_SECURE", True)
SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 60 * 60 * 24 * 30)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", False)
# Submitting a domain to the browsers' HSTS preload list is the domain owner's decision
# (and hard to undo), so it stays off unless asked for, and its reminder is silenced.
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"

# The second factor (accounts/two_factor.py): CAR, who records and verifies payments, and
# admins must use an authenticator app unless this says otherwise.
PARTNEROPS_REQUIRE_2FA_FOR = second_factor_roles(
    env_list("PARTNEROPS_REQUIRE_2FA_FOR", "CAR,admin")
)
