"""On PostgreSQL the payment-guard trigger follows Decision D, whoever writes:

- the offboard date is the latest case's (set at step 2 or 3; none if it was withdrawn),
  not the partner record's (step 5);
- a payment is after the offboard date when it is dated after it or recorded after it
  (server time; a day's margin, since the trigger does not know the organisation's zone and
  the services judge the local date exactly);
- such a payment needs an override approved by a CAR user other than the one who asked
  for it and the one recording the payment (four eyes);
- on UPDATE only the exception flags may change (the services recompute them when an
  offboard date becomes known); nothing else about a recorded payment does.
"""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION partnerops_payment_guard() RETURNS trigger AS $$
DECLARE
    cutoff date;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF (NEW.payout_id, NEW.amount, NEW.currency, NEW.paid_on, NEW.method,
            NEW.payment_system, NEW.reference, NEW.recorded_by_id, NEW.recorded_at,
            NEW.override_id, NEW.case_id, NEW.idempotency_key)
           IS DISTINCT FROM
           (OLD.payout_id, OLD.amount, OLD.currency, OLD.paid_on, OLD.method,
            OLD.payment_system, OLD.reference, OLD.recorded_by_id, OLD.recorded_at,
            OLD.override_id, OLD.case_id, OLD.idempotency_key) THEN
            RAISE EXCEPTION 'payments are append-only: only their exception flags change'
                USING ERRCODE = 'check_violation';
        END IF;
        RETURN NEW;
    END IF;
    -- The latest case's date (known from step 2/3) unless it was withdrawn; a partner
    -- offboarded without a case here keeps the record's own date.
    SELECT COALESCE((
        SELECT CASE WHEN c.state = 'withdrawn' THEN NULL ELSE c.offboard_date END
        FROM offboarding_case c
        WHERE c.partner_id = po.partner_id
        ORDER BY c.opened_at DESC, c.id DESC LIMIT 1
    ), p.offboard_date) INTO cutoff
    FROM payouts_payout po JOIN partners_partner p ON p.id = po.partner_id
    WHERE po.id = NEW.payout_id;
    NEW.after_offboard_date := NEW.after_offboard_date OR (cutoff IS NOT NULL AND (
        NEW.paid_on > cutoff OR (NEW.recorded_at AT TIME ZONE 'UTC')::date > cutoff + 1
    ));
    IF NEW.after_offboard_date AND NOT EXISTS (
        SELECT 1 FROM payouts_guardoverride o
        WHERE o.id = NEW.override_id AND o.approved_by_id IS NOT NULL
          AND (o.single_approval OR (o.approved_by_id <> o.requested_by_id
                                     AND o.approved_by_id <> NEW.recorded_by_id))
    ) THEN
        RAISE EXCEPTION 'payment guard: payment dated % is after the partner''s offboard date % '
            'and has no override approved by a second CAR user', NEW.paid_on, cutoff
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
"""

# 0005's function.
BACKWARD = """
CREATE OR REPLACE FUNCTION partnerops_payment_guard() RETURNS trigger AS $$
DECLARE
    cutoff date;
BEGIN
    SELECT p.offboard_date INTO cutoff
    FROM payouts_payout po JOIN partners_partner p ON p.id = po.partner_id
    WHERE po.id = NEW.payout_id;
    NEW.after_offboard_date := cutoff IS NOT NULL AND NEW.paid_on > cutoff;
    IF NEW.after_offboard_date AND NEW.override_id IS NULL THEN
        RAISE EXCEPTION 'payment guard: payment dated % is after the partner''s offboard date',
            NEW.paid_on USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("payouts", "0007_guard_overrides_four_eyes")]

    operations = [migrations.RunPython(forward, backward)]
