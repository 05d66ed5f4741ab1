"""Dashboard page time and query count with big tables: 100,000 failure logs, 10,000 retries, 50,000 sync runs.

    .venv/bin/python bench/dashboard_bench.py [--failures N] [--retries N] [--runs N] [--repeat N]

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
    args = parser.parse_args()

    import django

    django.setup()
    from django.db import connection
    from django.test.utils import setup_test_environment

    setup_test_environment()
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        run(args)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


def run(args) -> None:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from tests.opsdata import bulk, health_rows, make_user

    print(f"database: {connection.vendor}")
    started = time.perf_counter()
    health_rows()
    bulk(
        backups=40,
        failures=args.failures,
        retries=args.retries,
        runs=args.runs,
        audit=2_000,
    )
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    print(
        f"rows: {args.failures:,} failure logs, {args.retries:,} retries, {args.runs:,} sync runs, "
        f"2,000 audit entries (made in {time.perf_counter() - started:.1f} s)"
    )

    client = Client()
    client.force_login(make_user("bench", superuser=True))
    pages = [
        ("dashboard /", "/"),
        ("live partial", "/dashboard/live/"),
        ("/health/", "/health/"),
        ("/metrics", "/metrics"),
        ("admin failure logs", "/admin/retries/failurelog/"),
        ("admin retries", "/admin/retries/retryitem/"),
        ("admin sync runs", "/admin/finalesync/syncrun/"),
    ]
    print(f"\n{'page':<20} {'median ms':>10} {'max ms':>8} {'queries':>8} {'SQL ms':>8}")
    for label, url in pages:
        for _ in range(2):  # warm caches and connections
            assert client.get(url).status_code in (200, 503), url
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
            f"{label:<20} {statistics.median(times):>10.1f} {max(times):>8.1f} "
            f"{max(counts):>8} {statistics.median(sql_times):>8.1f}"
        )


if __name__ == "__main__":
    main()
