"""The case history as a hash chain (offboarding.case_chain).

Adds position, evidence_digests, previous_hash and hash to every event and seals the events
already recorded: per case in insertion order (by id), each gets its position, the digests
of the evidence files attached to it (read from storage; a file the storage cannot open is
recorded with sha256 null), the previous event's hash and its own. On PostgreSQL the
append-only trigger refuses UPDATE, so it is disabled for the backfill only, inside this
migration's transaction, and enabled again before the unique position per case is added.
"""

from django.db import migrations, models

from offboarding import case_chain

BATCH = 1000
SEALED_FIELDS = ["position", "evidence_digests", "previous_hash", "hash"]


def seal_existing_events(apps, schema_editor):
    CaseEvent = apps.get_model("offboarding", "CaseEvent")
    EvidenceFile = apps.get_model("offboarding", "EvidenceFile")
    if not CaseEvent.objects.exists():
        return
    postgres = schema_editor.connection.vendor == "postgresql"
    storage = EvidenceFile._meta.get_field("file").storage
    digests = {}
    files = EvidenceFile.objects.order_by("event_id", "pk").values_list(
        "event_id", "original_name", "size", "file"
    )
    for event_id, name, size, stored in files.iterator(BATCH):
        digests.setdefault(event_id, []).append(
            {"name": name, "size": size, "sha256": case_chain.stored_sha256(storage, stored)}
        )
    if postgres:
        # ALTER TABLE refuses to run while deferred foreign-key checks are pending.
        schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        schema_editor.execute(
            "ALTER TABLE offboarding_caseevent DISABLE TRIGGER caseevent_append_only"
        )
    batch, case_id, position, previous = [], None, 0, case_chain.GENESIS
    for event in CaseEvent.objects.order_by("case_id", "pk").iterator(BATCH):
        if event.case_id != case_id:
            case_id, position, previous = event.case_id, 0, case_chain.GENESIS
        position += 1
        event.position, event.previous_hash = position, previous
        event.evidence_digests = digests.pop(event.pk, [])
        event.hash = previous = case_chain.event_hash(event)
        batch.append(event)
        if len(batch) >= BATCH:
            CaseEvent.objects.bulk_update(batch, SEALED_FIELDS)
            batch = []
    if batch:
        CaseEvent.objects.bulk_update(batch, SEALED_FIELDS)
    if postgres:
        schema_editor.execute(
            "ALTER TABLE offboarding_caseevent ENABLE TRIGGER caseevent_append_only"
        )


class Migration(migrations.Migration):
    dependencies = [("offboarding", "0005_open_case_and_car_queue_indexes")]

    operations = [
        migrations.AddField(
            model_name="caseevent",
            name="position",
            field=models.PositiveIntegerField(
                default=0,
                editable=False,
                help_text="The event's place in the case's history: 1, 2, 3, …",
            ),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="caseevent",
            name="evidence_digests",
            field=models.JSONField(
                blank=True,
                default=list,
                editable=False,
                help_text="Name, size and SHA-256 of each file recorded with the event.",
            ),
        ),
        migrations.AddField(
            model_name="caseevent",
            name="previous_hash",
            field=models.CharField(default="", editable=False, max_length=64),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="caseevent",
            name="hash",
            field=models.CharField(
                default="",
                editable=False,
                help_text=(
                    "SHA-256 of the event's content and previous_hash (case_chain.HASH_RULE)."
                ),
                max_length=64,
            ),
            preserve_default=False,
        ),
        migrations.RunPython(seal_existing_events, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="caseevent",
            constraint=models.UniqueConstraint(
                fields=("case", "position"), name="caseevent_one_event_per_position"
            ),
        ),
    ]
