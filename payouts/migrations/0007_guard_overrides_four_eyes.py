"""Decision D: a guard override is asked by one CAR user and approved by another.

Overrides recorded before this were granted by one person: they keep that person as both
requester and approver (what happened), marked used when a payment or ledger line uses
them. The four-eyes constraint is added after that backfill and holds for new approvals.
"""

import django.db.models.deletion
import payouts.money
from django.conf import settings
from django.db import migrations, models


def backfill(apps, schema_editor):
    GuardOverride = apps.get_model("payouts", "GuardOverride")
    used = set()
    for model in ("Payment", "Commission", "Payout"):
        used.update(
            apps.get_model("payouts", model)
            .objects.exclude(override=None)
            .values_list("override_id", flat=True)
        )
    for override in GuardOverride.objects.all():
        override.requested_by_id = override.approved_by_id
        override.status = "used" if override.pk in used else "approved"
        override.decided_at = override.created_at
        override.single_approval = True
        override.save(update_fields=["requested_by", "status", "decided_at", "single_approval"])


class Migration(migrations.Migration):

    dependencies = [
        ('offboarding', '0005_open_case_and_car_queue_indexes'),
        ('partners', '0002_partner_cam_ids_index'),
        ('payouts', '0006_payment_case_newest_index'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='guardoverride',
            name='amount',
            field=payouts.money.MoneyField(blank=True, decimal_places=2, max_digits=14, null=True),
        ),
        migrations.AddField(
            model_name='guardoverride',
            name='case',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='guard_overrides', to='offboarding.case'),
        ),
        migrations.AddField(
            model_name='guardoverride',
            name='currency',
            field=models.CharField(blank=True, max_length=3),
        ),
        migrations.AddField(
            model_name='guardoverride',
            name='decided_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='guardoverride',
            name='kind',
            field=models.CharField(choices=[('payment', 'Payment'), ('commission', 'Commission'), ('payout', 'Payout')], default='payment', max_length=12),
        ),
        migrations.AddField(
            model_name='guardoverride',
            name='payout',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='guard_overrides', to='payouts.payout'),
        ),
        migrations.AddField(
            model_name='guardoverride',
            name='reference',
            field=models.CharField(blank=True, help_text="The commission's or payout's reference (accruals).", max_length=80),
        ),
        migrations.AddField(
            model_name='guardoverride',
            name='refusal_reason',
            field=models.TextField(blank=True),
        ),
        migrations.AddField(
            model_name='guardoverride',
            name='refused_by',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='refused_guard_overrides', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddField(
            model_name='guardoverride',
            name='requested_by',
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.PROTECT, related_name='requested_guard_overrides', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddField(
            model_name='guardoverride',
            name='status',
            field=models.CharField(choices=[('pending', 'Waiting for a second CAR user'), ('approved', 'Approved, not used yet'), ('used', 'Used'), ('refused', 'Refused')], default='pending', max_length=10),
        ),
        migrations.AlterField(
            model_name='guardoverride',
            name='approved_by',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='guard_overrides', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddIndex(
            model_name='guardoverride',
            index=models.Index(fields=['status', 'created_at'], name='payouts_gua_status_a22e95_idx'),
        ),
        migrations.AddField(
            model_name='guardoverride',
            name='single_approval',
            field=models.BooleanField(default=False, editable=False),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
        migrations.AlterField(
            model_name='guardoverride',
            name='requested_by',
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='requested_guard_overrides', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddConstraint(
            model_name='guardoverride',
            constraint=models.CheckConstraint(condition=models.Q(('approved_by__isnull', True), models.Q(('approved_by', models.F('requested_by')), _negated=True), ('single_approval', True), _connector='OR'), name='override_four_eyes'),
        ),
        migrations.AddConstraint(
            model_name='guardoverride',
            constraint=models.CheckConstraint(condition=models.Q(('status__in', ['pending', 'refused']), ('approved_by__isnull', False), _connector='OR'), name='override_used_only_when_approved'),
        ),
    ]
