"""The app's database role owns nothing (issue 15, item 7; ops/grants.py).

The suite runs as the owner (pytest-django creates the test database as postgres). These
tests create a role of their own, grant it exactly what `grant_app_role` grants, connect as it
with psycopg2 and prove what it can and cannot do; the payment delete trigger (payouts 0010)
holds for any role."""

import datetime as dt
import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg2
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.core.management.color import no_style
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from offboarding import services
from payouts.models import Payment
from tests.factories import PartnerFactory, PayoutFactory

ROOT = Path(__file__).resolve().parent.parent


def _request_data():
    return {
        "initiated_by": "company",
        "reason": "revenue_minimum",
        "reason_detail": "",
        "request_received_on": timezone.localdate() - dt.timedelta(days=1),
        "request_channel": "internal_review",
    }


@pytest.fixture
def ledger(roles):
    """A case (its events) and a payment, committed, so another connection sees them."""
    partner = PartnerFactory(cam=roles["cam"])
    case = services.open_case(actor=roles["cam"], partner_id=partner.pk, data=_request_data())
    payout = PayoutFactory(partner=partner)
    payment = Payment.objects.create(
        payout=payout,
        case=case,
        amount=payout.amount,
        currency=payout.currency,
        paid_on=timezone.localdate(),
        reference="ACH-ROLE",
        recorded_by=roles["car"],
    )
    return {"case": case, "payment": payment}


@pytest.fixture
def app_role(transactional_db):
    """A fresh login role granted as `manage.py grant_app_role` grants; dropped afterwards."""
    name = f"partnerops_test_app_{uuid.uuid4().hex[:10]}"
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE ROLE {name} LOGIN PASSWORD 'role-test'")
    try:
        call_command("grant_app_role", database="default", role=name, verbosity=0)
        yield name
    finally:
        with connection.cursor() as cursor:
            # DROP OWNED revokes its grants and default privileges in this database.
            cursor.execute(f"DROP OWNED BY {name}")
            cursor.execute(f"DROP ROLE {name}")


@pytest.fixture
def as_app(app_role):
    db = connection.settings_dict
    conn = psycopg2.connect(
        host=db.get("HOST") or "127.0.0.1",
        port=db.get("PORT") or 5432,
        dbname=db["NAME"],
        user=app_role,
        password="role-test",
    )
    conn.autocommit = True
    try:
        yield conn.cursor()
    finally:
        conn.close()


def _refused(cursor, sql, params=None) -> psycopg2.Error:
    with pytest.raises(psycopg2.Error) as refusal:
        cursor.execute(sql, params)
    return refusal.value


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_app_role_reads_and_writes_rows(ledger, as_app):
    as_app.execute(
        "SELECT count(*) FROM offboarding_caseevent WHERE case_id = %s", [ledger["case"].pk]
    )
    assert as_app.fetchone()[0] >= 1
    # An identity column: the role may draw from its sequence.
    as_app.execute(
        "INSERT INTO health_workerheartbeat (name, beat_at)"
        " VALUES ('role-test', now()) RETURNING id"
    )
    assert as_app.fetchone()[0] > 0
    as_app.execute("UPDATE health_workerheartbeat SET beat_at = now() WHERE name = 'role-test'")
    as_app.execute("DELETE FROM health_workerheartbeat WHERE name = 'role-test'")
    assert as_app.rowcount == 1
    as_app.execute("SELECT count(*) FROM django_migrations")
    assert as_app.fetchone()[0] > 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_app_role_cannot_truncate_alter_or_disable_triggers(ledger, as_app):
    refusal = _refused(as_app, "TRUNCATE offboarding_caseevent")
    assert refusal.pgcode == "42501", refusal  # insufficient_privilege
    refusal = _refused(
        as_app, "ALTER TABLE offboarding_caseevent DISABLE TRIGGER caseevent_append_only"
    )
    assert "must be owner" in str(refusal)
    refusal = _refused(as_app, "ALTER TABLE payouts_payment DISABLE TRIGGER ALL")
    assert "must be owner" in str(refusal)
    refusal = _refused(as_app, "DROP TABLE payouts_payment")
    assert "must be owner" in str(refusal)
    refusal = _refused(as_app, "CREATE TABLE partnerops_role_test (id int)")
    assert refusal.pgcode == "42501", refusal
    refusal = _refused(
        as_app, "INSERT INTO django_migrations (app, name, applied) VALUES ('x', 'y', now())"
    )
    assert refusal.pgcode == "42501", refusal


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_flush_as_the_app_role_fails(ledger, as_app):
    """What `manage.py flush` runs (Django's own flush SQL) is refused to the app role."""
    tables = connection.introspection.django_table_names(only_existing=True)
    statements = connection.ops.sql_flush(no_style(), tables, reset_sequences=True)
    assert statements and statements[0].startswith("TRUNCATE")
    for statement in statements:
        assert _refused(as_app, statement).pgcode == "42501"
    assert Payment.objects.filter(pk=ledger["payment"].pk).exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_history_and_payments_are_append_only_for_the_app_role(ledger, as_app):
    case, payment = ledger["case"], ledger["payment"]
    refusal = _refused(
        as_app, "UPDATE offboarding_caseevent SET note = 'rewritten' WHERE case_id = %s", [case.pk]
    )
    assert "append-only" in str(refusal)
    refusal = _refused(as_app, "DELETE FROM offboarding_caseevent WHERE case_id = %s", [case.pk])
    assert "append-only" in str(refusal)
    refusal = _refused(as_app, "DELETE FROM payouts_payment WHERE id = %s", [payment.pk])
    assert "append-only" in str(refusal)
    refusal = _refused(
        as_app, "UPDATE payouts_payment SET amount = amount + 1 WHERE id = %s", [payment.pk]
    )
    assert "append-only" in str(refusal)
    as_app.execute("SELECT count(*) FROM payouts_payment WHERE id = %s", [payment.pk])
    assert as_app.fetchone()[0] == 1


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_owner_cannot_delete_a_payment_either(roles):
    partner = PartnerFactory(cam=roles["cam"])
    payout = PayoutFactory(partner=partner)
    payment = Payment.objects.create(
        payout=payout,
        amount=payout.amount,
        currency=payout.currency,
        paid_on=timezone.localdate(),
        reference="ACH-OWNER",
        recorded_by=roles["car"],
    )
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        Payment.objects.filter(pk=payment.pk).delete()
    assert Payment.objects.filter(pk=payment.pk).exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_granting_is_idempotent_and_refuses_the_owner_as_app_role(app_role):
    call_command("grant_app_role", database="default", role=app_role, verbosity=0)
    with pytest.raises(CommandError, match="is the owner"):
        call_command("grant_app_role", database="default", role=connection.settings_dict["USER"])
    with pytest.raises(CommandError, match="no role"):
        call_command("grant_app_role", database="default", role="partnerops_no_such_role")


def _setup(**env):
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "partnerops.settings.dev", **env},
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize(
    ("app", "owner", "message"),
    [
        ("postgres://app@127.0.0.1/a", "sqlite:///owner.db", "must be a postgres"),
        ("postgres://app@127.0.0.1/a", "postgres://owner@127.0.0.1/b", "same host, port"),
        ("", "postgres://owner@127.0.0.1/a", "DATABASE_URL is not PostgreSQL"),
    ],
)
def test_a_wrong_owner_url_stops_start_up(app, owner, message):
    result = _setup(DATABASE_URL=app, DATABASE_OWNER_URL=owner)
    assert result.returncode != 0
    assert message in result.stderr


def test_a_matching_owner_url_gives_an_owner_alias():
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings; "
            "print(settings.DATABASES['owner']['USER'], settings.DATABASES['default']['USER'])",
        ],
        cwd=ROOT,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "partnerops.settings.dev",
            "DATABASE_URL": "postgres://app:pw@127.0.0.1:5432/a",
            "DATABASE_OWNER_URL": "postgres://owner:pw@127.0.0.1:5432/a",
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-2:] == ["owner", "app"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_create_app_role_makes_a_plain_login_role_and_resets_it():
    from ops.grants import create_app_role

    name = f"partnerops_test_new_{uuid.uuid4().hex[:10]}"
    try:
        assert create_app_role("default", name, password="first") is True
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER ROLE {name} CREATEDB")
        assert create_app_role("default", name, password="second") is False
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolbypassrls "
                "FROM pg_roles WHERE rolname = %s",
                [name],
            )
            assert cursor.fetchone() == (True, False, False, False, False)
        db = connection.settings_dict
        psycopg2.connect(
            host=db.get("HOST") or "127.0.0.1", dbname=db["NAME"], user=name, password="second"
        ).close()
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP ROLE IF EXISTS {name}")
