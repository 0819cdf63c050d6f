"""On PostgreSQL a recorded payment cannot be deleted, whoever asks: payments are append-only
like case events (0008's guard already refuses UPDATEs other than the exception flags).
TRUNCATE skips row triggers; the app's database role has no TRUNCATE privilege (ops/grants.py).
"""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION partnerops_payment_no_delete() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'payments are append-only: payment % cannot be deleted', OLD.id
        USING ERRCODE = 'check_violation';
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS payment_append_only ON payouts_payment;
CREATE TRIGGER payment_append_only BEFORE DELETE ON payouts_payment
    FOR EACH ROW EXECUTE FUNCTION partnerops_payment_no_delete();
"""
BACKWARD = """
DROP TRIGGER IF EXISTS payment_append_only ON payouts_payment;
DROP FUNCTION IF EXISTS partnerops_payment_no_delete();
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("payouts", "0009_payment_request_fingerprint")]

    operations = [migrations.RunPython(forward, backward)]
