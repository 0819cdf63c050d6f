import pytest
from django.conf import settings
from django.db import connection

from tests.factories import UserFactory


def _database_description() -> str:
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("postgresql"):
        return f"PostgreSQL at {db.get('HOST') or 'local socket'}:{db.get('PORT') or 5432}"
    return "SQLite (set DATABASE_URL=postgres://... to run the PostgreSQL-only tests)"


def pytest_report_header(config):
    return f"partnerops database: {_database_description()}"


def pytest_terminal_summary(terminalreporter):
    terminalreporter.write_line(f"Tests ran against {_database_description()}.")


def pytest_collection_modifyitems(config, items):
    if settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
        return
    skip = pytest.mark.skip(
        reason="needs PostgreSQL (row locks, triggers); DATABASE_URL is not set"
    )
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _empty_cache():
    """Each test starts with an empty cache (the inbox's counts, notifications.selectors)."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def is_postgres():
    return connection.vendor == "postgresql"


@pytest.fixture
def roles(db):
    """One user per role, like the demo: cam, cam2, salesops, car, car2, portaladmin, manager."""
    from django.apps import apps

    from accounts.roles import Role, sync_roles

    # A transactional test flushes the tables, and with them the groups the data
    # migration created; put them back exactly as the migration does.
    sync_roles(apps)
    return {
        "cam": UserFactory(username="cam", role=Role.CAM),
        "cam2": UserFactory(username="cam2", role=Role.CAM),
        "salesops": UserFactory(username="salesops", role=Role.SALES_OPS),
        "car": UserFactory(username="car", role=Role.CAR),
        "car2": UserFactory(username="car2", role=Role.CAR),
        "portaladmin": UserFactory(username="portaladmin", role=Role.PORTAL_ADMIN),
        "manager": UserFactory(username="manager", role=Role.MANAGER),
        "nobody": UserFactory(username="nobody"),
    }
