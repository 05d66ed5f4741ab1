"""Dashboard page time and query count with big tables: 100,000 failure logs, 10,000 retries, 50,000 sync runs.

    .venv/bin/python bench/dashboard_bench.py [--failures N] [--retries N] [--runs N] [--repeat N]
                                              [--health-changes N] [--only analytics]

Also measures the retry analytics page (/analytics/ for 7, 30 and 90 days, all types and one), its JSON and a
CSV download, over the same rows plus 20,000 health changes and 600 pause / snooze / resume entries.

Runs against a database of its own, created and dropped here: a fresh SQLite file under var/ by default, or
a `test_…` database on the PostgreSQL server of DATABASE_URL. Prints, per page, the median and slowest
response time, the number of SQL queries and the time spent in them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "finalesync.settings")
if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
    os.environ["TEST_DATABASE_NAME"] = str(ROOT / "var" / f"bench-dashboard-{os.getpid()}.sqlite3")
else:
    os.environ["TEST_DATABASE_NAME"] = f"finalesync_bench_dashboard_{os.getpid()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--failures", type=int, default=100_000)
    parser.add_argument("--retries", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--health-changes", type=int, default=20_000)
    parser.add_argument("--only", default="", help="measure only the pages whose label contains this")
    parser.add_argument(
        "--at",
        default="23:50",
        help="local time of day the clock is frozen at (HH:MM, or 'now'). The analytics page reads the closed "
        "days of its window from stored figures and today from the tables: just before midnight, today is "
        "largest, so that is the default.",
    )
    args = parser.parse_args()

    import django

    django.setup()
    from django.db import connection
    from django.test.utils import setup_test_environment

    setup_test_environment()
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        if args.at == "now":
            run(args)
        else:
            import time_machine
            from django.utils import timezone

            hour, minute = map(int, args.at.split(":"))
            frozen = timezone.localtime().replace(hour=hour, minute=minute, second=0, microsecond=0)
            with time_machine.travel(frozen, tick=True):
                run(args)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


def run(args) -> None:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from tests.opsdata import bulk, health_rows, make_user

    print(f"database: {connection.vendor}, clock at {timezone.localtime():%Y-%m-%d %H:%M %Z}")
    started = time.perf_counter()
    health_rows()
    bulk(
        backups=40,
        failures=args.failures,
        retries=args.retries,
        runs=args.runs,
        audit=2_000,
        health_changes=args.health_changes,
        pauses=600,
    )
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    print(
        f"rows: {args.failures:,} failure logs, {args.retries:,} retries, {args.runs:,} sync runs, "
        f"2,000 audit entries, {args.health_changes:,} health changes, 600 pause entries "
        f"(made in {time.perf_counter() - started:.1f} s)"
    )

    client = Client()
    client.force_login(make_user("bench", superuser=True))
    pages = [
        ("dashboard /", "/"),
        ("live partial", "/dashboard/live/"),
        ("/health/", "/health/"),
        ("admin failure logs", "/admin/retries/failurelog/"),
        ("admin retries", "/admin/retries/retryitem/"),
        ("admin sync runs", "/admin/finalesync/syncrun/"),
        # The first view of the 90 days summarises and stores its 89 closed days (the "first" column).
        ("analytics 90 d", "/analytics/?days=90"),
        ("analytics 30 d", "/analytics/?days=30"),
        ("analytics 7 d", "/analytics/?days=7"),
        ("analytics 30 d inv.", "/analytics/?days=30&type=inventory"),
        ("analytics.json 30 d", "/analytics.json?days=30"),
        ("outages.csv 90 d", "/analytics/outages.csv?days=90"),
        ("/metrics", "/metrics"),
    ]
    pages = [(label, url) for label, url in pages if args.only in label]
    # "first": the first request of each page. For /analytics/ with days it has not seen, that is when the
    # window's closed days are summarised and stored (once); the other columns are the views after it.
    print(
        f"\n{'page':<22} {'median ms':>10} {'max ms':>8} {'queries':>8} {'SQL ms':>8} {'first ms':>9} {'queries':>8}"
    )
    for label, url in pages:
        with CaptureQueriesContext(connection) as queries:
            t0 = time.perf_counter()
            assert client.get(url).status_code in (200, 503), url
            first = ((time.perf_counter() - t0) * 1000, len(queries))
        assert client.get(url).status_code in (200, 503), url  # warm caches and connections
        times, sql_times, counts = [], [], []
        for _ in range(args.repeat):
            with CaptureQueriesContext(connection) as queries:
                t0 = time.perf_counter()
                response = client.get(url)
                times.append((time.perf_counter() - t0) * 1000)
            assert response.status_code in (200, 503), url
            counts.append(len(queries))
            sql_times.append(sum(float(q["time"]) for q in queries.captured_queries) * 1000)
        print(
            f"{label:<22} {statistics.median(times):>10.1f} {max(times):>8.1f} "
            f"{max(counts):>8} {statistics.median(sql_times):>8.1f} {first[0]:>9.1f} {first[1]:>8}"
        )


if __name__ == "__main__":
    main()
