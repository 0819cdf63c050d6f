"""Settings read from the environment: a bad value stops start-up and names the variable."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from partnerops.settings.env import env_float

ROOT = Path(__file__).resolve().parent.parent


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


@pytest.mark.parametrize("raw", ["abc", "-1"])
def test_bad_random_page_cost_stops_start_up(raw):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "partnerops.settings.dev",
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/unused",
        "DATABASE_RANDOM_PAGE_COST": raw,
    }
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "DATABASE_RANDOM_PAGE_COST" in result.stderr


@pytest.mark.postgres
@pytest.mark.django_db
def test_postgres_sessions_price_random_reads_for_ssd():
    with connection.cursor() as cursor:
        cursor.execute("SHOW random_page_cost")
        assert float(cursor.fetchone()[0]) == 1.1
