"""A payment keeps what its request asked for, so a replayed key with other arguments is
refused; a batch's payments share the batch's key."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("payouts", "0008_guard_trigger_case_date_and_four_eyes")]

    operations = [
        migrations.AddField(
            model_name="payment",
            name="batch_key",
            field=models.UUIDField(blank=True, db_index=True, null=True),
        ),
        migrations.AddField(
            model_name="payment",
            name="request_fingerprint",
            field=models.CharField(blank=True, db_default="", default="", max_length=64),
        ),
    ]
