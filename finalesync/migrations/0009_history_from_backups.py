"""Converts finalesync 0.1's backups (gzip CSV dumps of a whole table) into row history, so the states they
held stay restorable: each backup, oldest first, becomes one history seq (with a sync run of trigger "import"
as its restore point), and the live rows at upgrade time become the newest seq. A fresh install has nothing
to convert. Holds one table's rows in memory at a time."""

import csv
import io
import json
import zlib

from django.db import migrations

# The data types of 0.1 and their tables' models (a type added later has no backups to convert).
MODELS = {
    "inventory": "InventoryItem",
    "vendors": "Vendor",
    "boms": "BomLine",
    "purchase_orders": "PurchaseOrder",
}
STAMPS = ("created_at", "updated_at")
BATCH = 2000


def _fields(model):
    return [f for f in model._meta.concrete_fields if not f.primary_key and f.name != "natural_key"]


def _backup_rows(backup, chunks, fields) -> dict:
    """{natural_key: {field: value}} of one backup."""
    decompressor = zlib.decompressobj(wbits=31)
    data = b"".join(
        decompressor.decompress(bytes(c))
        for c in chunks.filter(backup=backup).order_by("seq").values_list("data", flat=True)
    )
    data += decompressor.flush()
    reader = csv.reader(io.StringIO(data.decode("utf-8"), newline=""))
    header = next(reader, [])
    at = {name: i for i, name in enumerate(header)}
    rows = {}
    for cells in reader:
        key = cells[at["natural_key"]]
        values = {}
        for f in fields:
            raw = cells[at[f.column]] if f.column in at else ""
            if f.get_internal_type() == "JSONField":
                values[f.name] = json.loads(raw) if raw else ({} if f.name == "extra" else [])
            elif raw == "" and f.null:
                values[f.name] = None
            else:
                values[f.name] = f.to_python(raw)
        rows[key] = values
    return rows


def _live_rows(model, fields) -> dict:
    names = [f.name for f in fields]
    return {
        row["natural_key"]: {n: row[n] for n in names} for row in model.objects.values("natural_key", *names)
    }


def _same(a: dict, b: dict) -> bool:
    return all(a.get(k) == b.get(k) for k in a if k not in STAMPS)


def forwards(apps, schema_editor):
    Backup = apps.get_model("retries", "Backup")
    Chunk = apps.get_model("retries", "BackupChunk")
    Config = apps.get_model("finalesync", "DataTypeConfig")
    SyncRun = apps.get_model("finalesync", "SyncRun")
    for data_type, model_name in MODELS.items():
        model = apps.get_model("finalesync", model_name)
        versions = apps.get_model("finalesync", f"{model_name}Version")
        fields = _fields(model)
        states = [
            (backup.created_at, {"converted_backup": backup.pk, "backup_reason": backup.reason}, backup)
            for backup in Backup.objects.filter(data_type=data_type).order_by("created_at", "id")
        ]
        live_count = model.objects.count()
        if not states and not live_count:
            continue
        previous: dict = {}
        seq = 0
        for when, details, backup in [*states, (None, {"converted": "the live rows at upgrade"}, None)]:
            rows = _backup_rows(backup, Chunk.objects, fields) if backup else _live_rows(model, fields)
            created = [k for k in rows if k not in previous]
            updated = [k for k in rows if k in previous and not _same(rows[k], previous[k])]
            deleted = [k for k in previous if k not in rows]
            if seq and not (created or updated or deleted):
                previous = rows
                continue
            seq += 1
            batch = [versions(natural_key=k, seq=seq, **rows[k]) for k in [*created, *updated]]
            batch += [versions(natural_key=k, seq=seq, deleted=True) for k in deleted]
            for start in range(0, len(batch), BATCH):
                versions.objects.bulk_create(batch[start : start + BATCH])
            run = SyncRun.objects.create(
                data_type=data_type,
                trigger="import",
                triggered_by="upgrade",
                outcome="success",
                item_count=len(rows),
                created=len(created),
                updated=len(updated),
                deleted=len(deleted),
                history_seq=seq,
                details=details,
            )
            if when is not None:
                SyncRun.objects.filter(pk=run.pk).update(started_at=when, finished_at=when)
            previous = rows
        Config.objects.filter(data_type=data_type).update(history_seq=seq, live_rows=live_count)


class Migration(migrations.Migration):
    dependencies = [
        ("finalesync", "0008_row_history"),
        ("retries", "0003_failure_chart_index"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
