"""Settings read from the environment: a bad value stops start-up and names the variable."""

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from partnerops.settings.env import env_float


@pytest.mark.parametrize(("raw", "value"), [("1.1", 1.1), ("0", 0.0), ("4", 4.0)])
def test_env_float_reads_numbers(monkeypatch, raw, value):
    monkeypatch.setenv("PARTNEROPS_TEST_FLOAT", raw)
    assert env_float("PARTNEROPS_TEST_FLOAT", 9.0) == value


def test_env_float_default_when_unset(monkeypatch):
    monkeypatch.delenv("PARTNEROPS_TEST_FLOAT", raising=False)
    assert env_float("PARTNEROPS_TEST_FLOAT", 9.0) == 9.0


@pytest.mark.parametrize("raw", ["fast", "", "nan", "inf", "1,1"])
def test_env_float_refuses_what_is_not_a_finite_number(monkeypatch, raw):
    monkeypatch.setenv("PARTNEROPS_TEST_FLOAT", raw)
    with pytest.raises(ImproperlyConfigured, match="PARTNEROPS_TEST_FLOAT"):
        env_float("PARTNEROPS_TEST_FLOAT", 9.0)


@pytest.mark.postgres
@pytest.mark.django_db
def test_postgres_sessions_leave_the_planner_to_the_server():
    """Planner settings belong to the server's configuration, not to each connection."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT name, source FROM pg_settings WHERE name IN %s",
            [("random_page_cost", "seq_page_cost", "work_mem", "jit", "enable_hashjoin")],
        )
        sources = dict(cursor.fetchall())
    assert len(sources) == 5
    assert {name for name, source in sources.items() if source in ("client", "session")} == set()
