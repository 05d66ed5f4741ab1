"""Row history: which states of a type can be brought back, what each sync changed, and pruning.

Every sync or restore that changes a type's rows writes the new version of each row it creates or updates and
a deletion for each key it removes, under the next history sequence number of the type (its `seq`), in the
same transaction as the change itself (finalesync/staging.py). The state after a run is therefore the newest
version of each key at or before the run's seq. Cost: proportional to what changed.

Retention keeps the newest `history_keep_syncs` changing runs of a type and every one of the last
`history_keep_days` days restorable. Pruning keeps, for each key, its newest version at or before the oldest
kept point (the "floor"), so that point, every later one and the latest state stay whole.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from .datatypes import registry
from .datatypes.base import DataType
from .errors import VerificationFailed
from .mirror import STAMPS, data_fields
from .models import DataTypeConfig, SyncRun
from .staging import Diff, Staging, qn

PRUNE_BATCH = 10_000


def restore_points(data_type: str, *, limit: int | None = None) -> list[SyncRun]:
    """The runs whose resulting state can still be restored, newest first: each run that changed the type
    (or imported a backup) and whose seq is at or above the type's floor."""
    config = DataTypeConfig.objects.get(data_type=data_type)
    runs = (
        SyncRun.objects.filter(
            data_type=data_type,
            history_seq__gte=max(config_floor(config), 1),
            outcome__in=[SyncRun.Outcome.SUCCESS, SyncRun.Outcome.ROLLED_BACK],
        )
        .filter(Q(created__gt=0) | Q(updated__gt=0) | Q(deleted__gt=0) | Q(trigger=SyncRun.Trigger.IMPORT))
        .order_by("-history_seq", "-started_at")
    )
    return list(runs[:limit] if limit else runs)


def config_floor(config: DataTypeConfig) -> int:
    """The oldest restorable seq of a type (0 before its first prune)."""
    return config.history_floor


def is_restorable(config: DataTypeConfig, seq: int) -> bool:
    return config_floor(config) <= seq <= config.history_seq and seq > 0


def live_differs(datatype: DataType, *, seq: int) -> bool:
    """Whether the live rows differ from the state at `seq` (a person edited or emptied the table)."""
    return compare(datatype, seq=seq).changes > 0


def compare(datatype: DataType, *, seq: int) -> Diff:
    """What restoring `datatype` to the state at `seq` would change (nothing is changed)."""
    with transaction.atomic(), Staging(datatype) as staging:
        staging.load_state(seq)
        return staging.diff(stamps=True)


def apply_state(datatype: DataType, *, seq: int, lease, run: SyncRun, on_rows=None) -> tuple[int, object]:
    """Make the live rows of `datatype` equal to its state at history seq `seq`, all or nothing, under the
    caller's lock. Returns (the seq after the restore, the diff it applied). Raises VerificationFailed when the
    result does not have the rows the state has."""
    with Staging(datatype) as staging:
        staged = staging.load_state(seq)
        if on_rows:
            on_rows(staged)
        diff = staging.diff(stamps=True)
        with transaction.atomic():
            lease.check()
            config = DataTypeConfig.objects.select_for_update().get(data_type=datatype.name)
            new_seq = config.history_seq + 1 if diff.changes else config.history_seq
            staging.apply(seq=new_seq, now=timezone.now(), stamps=True)
            actual = staging.live_count()
            if actual != staged:
                raise VerificationFailed(
                    f"Restoring {datatype.name} to #{seq} left {actual:,} rows where the state has {staged:,}; "
                    "nothing was changed",
                    details={"actual": actual, "expected": staged},
                )
            DataTypeConfig.objects.filter(pk=config.pk).update(history_seq=new_seq, live_rows=actual)
            SyncRun.objects.filter(pk=run.pk).update(history_seq=new_seq)
    return new_seq, diff


# --- what changed ---------------------------------------------------------------------------------------------
@dataclass
class Change:
    """One row a sync created, updated or deleted: the values before and after, and which columns changed."""

    key: str
    kind: str  # created, updated, deleted
    before: dict | None
    after: dict | None
    changed: list[str] = field(default_factory=list)

    def as_json(self) -> dict:
        def plain(values):
            return None if values is None else {k: jsonable(v) for k, v in values.items()}

        if self.kind == "updated":
            return {
                "key": self.key,
                "kind": self.kind,
                "changes": {c: [jsonable(self.before[c]), jsonable(self.after[c])] for c in self.changed},
            }
        return {"key": self.key, "kind": self.kind, "before": plain(self.before), "after": plain(self.after)}


def jsonable(value):
    if isinstance(value, datetime):
        return value.isoformat()
    if value is None or isinstance(value, (str, int, float, bool, list, dict)):
        return value
    return str(value)


def _value_fields(datatype: DataType) -> list[str]:
    return [f.name for f in data_fields(datatype.model)]


def changes(
    data_type: str, *, seq: int, search: str = "", offset: int = 0, limit: int | None = 100
) -> tuple[list[Change], int]:
    """The rows the run that wrote `seq` changed (keys containing `search`), in key order, and their total.
    Before-values come from each key's previous version."""
    datatype = registry.get(data_type)
    versions = datatype.model.Versions
    names = _value_fields(datatype)
    current = versions.objects.filter(seq=seq)
    if search:
        current = current.filter(natural_key__icontains=search)
    total = current.count()
    page = list(
        current.order_by("natural_key").values("natural_key", "deleted", *names)[
            offset : (offset + limit) if limit else None
        ]
    )
    keys = [row["natural_key"] for row in page]
    previous = _previous_versions(versions, keys, seq, names)
    out = []
    for row in page:
        key = row.pop("natural_key")
        deleted = row.pop("deleted")
        before = previous.get(key)
        if deleted:
            out.append(Change(key, "deleted", before, None))
        elif before is None:
            out.append(Change(key, "created", None, row))
        else:
            changed = [n for n in names if before.get(n) != row.get(n)]
            out.append(Change(key, "updated", before, row, changed))
    return out, total


def _previous_versions(versions, keys: list[str], seq: int, names: list[str]) -> dict[str, dict]:
    """For each key, its newest version before `seq` (absent when there is none or it is a deletion)."""
    found: dict[str, dict] = {}
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        rows = (
            versions.objects.filter(natural_key__in=chunk, seq__lt=seq)
            .order_by("natural_key", "-seq")
            .values("natural_key", "seq", "deleted", *names)
        )
        for row in rows:
            key = row["natural_key"]
            if key in found or row["seq"] is None:
                continue
            found[key] = None if row["deleted"] else {n: row[n] for n in names}
    return {k: v for k, v in found.items() if v is not None}


def key_history(data_type: str, key: str) -> list[dict]:
    """Every retained version of one key, newest first, with the run that wrote it."""
    datatype = registry.get(data_type)
    names = _value_fields(datatype)
    rows = list(
        datatype.model.Versions.objects.filter(natural_key=key)
        .order_by("-seq")
        .values("seq", "deleted", *names, *STAMPS)
    )
    runs = writers(data_type, [r["seq"] for r in rows])
    history = []
    for i, row in enumerate(rows):
        older = rows[i + 1] if i + 1 < len(rows) else None
        if row["deleted"]:
            kind = "deleted"
        elif older is None or older["deleted"]:
            kind = "created"
        else:
            kind = "updated"
        changed = [n for n in names if older and not older["deleted"] and older[n] != row[n]]
        history.append(
            {"seq": row["seq"], "run": runs.get(row["seq"]), "kind": kind, "values": row, "changed": changed}
        )
    return history


def writers(data_type: str, seqs: list[int]) -> dict[int, SyncRun]:
    """The run that wrote each history seq (the first run that reached it)."""
    out: dict[int, SyncRun] = {}
    for run in SyncRun.objects.filter(data_type=data_type, history_seq__in=set(seqs)).order_by(
        "started_at", "id"
    ):
        out.setdefault(run.history_seq, run)
    return out


def run_seq(run: SyncRun) -> int | None:
    """The seq whose changes are this run's, or None when the run changed nothing."""
    if run.history_seq is None or not (run.changed or run.trigger == SyncRun.Trigger.IMPORT):
        return None
    first = writers(run.data_type, [run.history_seq]).get(run.history_seq)
    return run.history_seq if first is not None and first.pk == run.pk else None


# --- retention ------------------------------------------------------------------------------------------------
def retention_floor(config: DataTypeConfig, *, now: datetime, protect: set[int] = frozenset()) -> int:
    """The oldest seq the retention settings keep restorable (the latest state is always kept)."""
    points = list(
        SyncRun.objects.filter(data_type=config.data_type, history_seq__isnull=False)
        .filter(Q(created__gt=0) | Q(updated__gt=0) | Q(deleted__gt=0) | Q(trigger=SyncRun.Trigger.IMPORT))
        .order_by("-history_seq")
        .values_list("history_seq", "started_at")
    )
    kept = [seq for seq, _ in points[: config.history_keep_syncs]]
    cutoff = now - timedelta(days=config.history_keep_days)
    kept += [seq for seq, started in points if started >= cutoff]
    floor = min([*kept, config.history_seq]) if kept else config.history_seq
    if protect:
        floor = min(floor, *protect)
    return max(floor, config.history_floor)


def prune(data_type: str, *, now: datetime, protect: set[int] = frozenset(), batch: int = PRUNE_BATCH) -> int:
    """Remove history below the retention floor of `data_type`, in batches of `batch` rows (each its own
    transaction). Seqs in `protect` (targets of queued or running restores) stay restorable. Returns the
    number of versions removed."""
    config = DataTypeConfig.objects.get(data_type=data_type)
    floor = retention_floor(config, now=now, protect=protect)
    if floor <= config.history_floor:
        return 0
    table = qn(registry.get(data_type).model.Versions._meta.db_table)
    # Below the floor a version is useless once a newer version of its key exists at or below the floor;
    # a deletion below the floor is useless anyway (the key is absent at the floor either way).
    doomed = (
        f"SELECT v.natural_key, v.seq FROM {table} v WHERE v.seq < %s AND (v.deleted OR EXISTS "
        f"(SELECT 1 FROM {table} w WHERE w.natural_key = v.natural_key AND w.seq > v.seq AND w.seq <= %s)) "
        f"LIMIT {int(batch)}"
    )
    removed = 0
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {table} WHERE (natural_key, seq) IN ({doomed})", [floor, floor])
            count = cursor.rowcount
        removed += count
        if count < batch:
            break
    DataTypeConfig.objects.filter(pk=config.pk, history_floor__lt=floor).update(history_floor=floor)
    return removed


def history_size(data_type: str) -> int:
    """Rows of history a type keeps (for the admin and the benchmark)."""
    return registry.get(data_type).model.Versions.objects.count()


def restorable_seqs() -> dict[str, set[int]]:
    """Seqs that queued or running restores will need, per type (cleanup must keep them)."""
    needed: dict[str, set[int]] = {}
    for data_type, seq in SyncRun.objects.filter(
        trigger=SyncRun.Trigger.RESTORE,
        outcome__in=[SyncRun.Outcome.QUEUED, SyncRun.Outcome.RUNNING],
        restore_seq__isnull=False,
    ).values_list("data_type", "restore_seq"):
        needed.setdefault(data_type, set()).add(seq)
    return needed
