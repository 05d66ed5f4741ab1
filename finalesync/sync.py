"""The sync pipeline for one data type: lock, fetch and stage, check, apply with history, verify, record.

`sync_data_type()` is the one entry point; the runsync command, the django-q2 tasks, the retry processor and
the dashboard all call it. It never raises for a Finale or data problem: the outcome is in the result, and the
`run_finished` signal tells the retry queue and the health app (finalesync/signals.py).

What one sync does, in order:
1. takes the type's lock (finalesync/locks.py) — a second worker is `skipped`;
2. streams the data (the data type's own `open()`), checks and cleans it a batch at a time against the model's
   fields, and stages it in a temporary table; unreadable rows are counted and their live rows kept. Report
   lines that have not changed since the last sync are passed over unread (finalesync/unchanged.py), except
   in a full comparison (the first sync, a table changed by hand, once every SYNC_FULL_COMPARE_HOURS);
3. compares the staged rows with the live ones, value by value, and runs the data checks
   (finalesync/safety.py): empty or unreadable data is refused; a suspicious drop or change is refused unless
   a person confirmed this run. Forcing a run never skips these checks;
4. in one transaction: checks it still holds the lock, writes the new version of every changed row into the
   row history and makes the live table match, verifies the row count, records the new history seq.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict

from django.db import transaction
from django.utils import timezone

from . import safety
from .client import FinaleClient, load_credentials
from .credentials import report_url_for
from .datatypes import registry
from .errors import VerificationFailed
from .models import DataTypeConfig, SyncRun
from .runs import Run, RunResult
from .safety import Confirmation
from .staging import Staging
from .unchanged import full_compare_reason


class Progress:
    """Progress callbacks; the default does nothing. runsync passes one that draws a bar."""

    def fetched(self, data_type: str, rows: int) -> None: ...

    def applying(self, data_type: str, rows: int) -> None: ...

    def done(self, data_type: str) -> None: ...


def ensure_configs() -> dict[str, DataTypeConfig]:
    """A configuration row for every registered data type, created with the type's defaults."""
    existing = {c.data_type: c for c in DataTypeConfig.objects.all()}
    for name in registry.NAMES:
        if name not in existing:
            existing[name], _ = DataTypeConfig.objects.get_or_create(
                data_type=name, defaults={"interval_minutes": registry.get(name).default_interval_minutes}
            )
    return existing


def sync_data_type(
    *,
    data_type: str,
    trigger: str = SyncRun.Trigger.CLI,
    force: bool = False,
    confirm: Confirmation | None = None,
    user: str = "system",
    client_factory: Callable[[], FinaleClient] | None = None,
    progress: Progress | None = None,
) -> RunResult:
    """Sync one data type from Finale, all or nothing.

    `force` records that a person ran it regardless of its schedule (the caller decided to run it; the data
    checks still apply). `confirm` accepts what the data checks find suspicious, for this run only (never
    empty or unreadable data). Returns the run's result; raises KeyError for an unknown type.
    """
    datatype = registry.get(data_type)
    ensure_configs()
    progress = progress or Progress()
    run = Run(
        datatype,
        trigger=trigger,
        user=user,
        forced=force,
        confirmed=confirm is not None,
        progress=lambda rows: progress.fetched(data_type, rows),
    )
    with run:
        if run.held:
            _sync(run, confirm=confirm, client_factory=client_factory, progress=progress)
    progress.done(data_type)
    return run.result


def _sync(run: Run, *, confirm, client_factory, progress) -> None:
    datatype, config = run.datatype, run.config
    factory = client_factory or (lambda: FinaleClient(load_credentials()))
    label = datatype.label.lower()
    with Staging(datatype) as staging, factory() as client:
        with datatype.open(client=client, report_url=report_url_for(config)) as source:
            unchanged = None
            why = full_compare_reason(config) if source.passes_over_unchanged else "every row is read"
            if why is None:
                unchanged = staging.pass_over()
                why = full_compare_reason(config, live_rows=len(unchanged))
                if why:
                    unchanged = staging.unchanged = None
            raws = source.batches(unchanged=unchanged)
            staging.load((datatype.finish(raw) for raw in raws), on_batch=run.heartbeat)
            end_verified = source.end_verified
        if unchanged is not None and not unchanged.passed and len(unchanged):
            # Not one line as it was (new code or a new column layout): every row was read; compare them all.
            unchanged = staging.unchanged = None
            why = "no line was as the last sync read it"
        duplicates, duplicate_keys = staging.drop_duplicates()
        examples = [asdict(b) for b in staging.examples]
        examples += [
            {"line": None, "reason": "duplicate key (first row kept)", "key": k} for k in duplicate_keys
        ]
        bad = staging.bad + duplicates
        good = staging.good_count()
        run.note(bad_rows=bad, item_count=good, details={"bad_examples": examples[:5]} if examples else {})
        safety.check_readable(label=label, good=good, bad=bad, examples=examples)

        diff = staging.diff(emptied_ratio=config.max_emptied_ratio)
        accepted = safety.check_changes(
            label=datatype.label, config=config, diff=diff, end_verified=end_verified, confirmation=confirm
        )
        if accepted:
            run.note(details={"confirmed_findings": accepted, "confirmed_by": confirm.by})
        progress.applying(datatype.name, diff.changes)
        with transaction.atomic():
            run.lease.check()
            current = DataTypeConfig.objects.select_for_update().get(pk=config.pk)
            seq = current.history_seq + 1 if diff.changes else current.history_seq
            staging.apply(seq=seq, now=timezone.now())
            actual = staging.live_count()
            if actual != diff.rows_after:
                raise VerificationFailed(
                    f"After applying, {datatype.name} has {actual:,} rows where {diff.rows_after:,} were expected; "
                    "the change was rolled back",
                    details={"actual": actual, "expected": diff.rows_after},
                )
            compared = {} if unchanged is not None else {"full_compare_at": timezone.now()}
            DataTypeConfig.objects.filter(pk=config.pk).update(history_seq=seq, live_rows=actual, **compared)
            # In the apply transaction: if the worker dies right after the commit, the run's state is known.
            SyncRun.objects.filter(pk=run.run.pk).update(history_seq=seq)
    if unchanged is not None:
        run.note(details={"lines_passed_over": unchanged.passed})
    else:
        run.note(details={"full_compare": why})
    run.succeed(seq=seq, item_count=actual, diff=diff)
