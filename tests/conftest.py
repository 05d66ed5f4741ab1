"""Shared fixtures: the Finale simulator on loopback, settings pointing at it, and subprocess helpers."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from finalesync.simulator import FinaleSimulator

ROOT = Path(__file__).resolve().parent.parent
SIM_SECRET = "sim-secret-Zx81-do-not-leak"


def pytest_collection_modifyitems(config, items):
    on_postgres = settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
    skip = pytest.mark.skip(reason="needs PostgreSQL (set DATABASE_URL)")
    for item in items:
        if "postgres" in item.keywords and not on_postgres:
            item.add_marker(skip)


@pytest.fixture
def sim():
    """A fresh simulator per test (small data, fast faults)."""
    counts = {"inventory": 300, "vendors": 60, "boms": 60, "purchase_orders": 80}
    with FinaleSimulator(port=0, seed=7, counts=counts, api_secret=SIM_SECRET, slow_seconds=3.0) as simulator:
        yield simulator


@pytest.fixture
def finale(sim, settings):
    """Settings pointing finalesync at the simulator, as the environment would."""
    settings.FINALE_BASE_URL = sim.base_url
    settings.FINALE_ACCOUNT = sim.account
    settings.FINALE_API_KEY = sim.api_key
    settings.FINALE_API_SECRET = sim.api_secret
    settings.FINALE_REPORT_URLS = {name: sim.report_url(name) for name in ("inventory", "vendors", "boms")}
    settings.FINALE_READ_TIMEOUT = 1.0
    settings.FINALE_CONNECT_TIMEOUT = 1.0
    return sim


def database_url() -> str:
    """The URL of the test database, for subprocesses that must see what the test committed."""
    db = connection.settings_dict
    if connection.vendor == "postgresql":
        return f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    return f"sqlite:///{db['NAME']}"


def finale_env(sim) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FINALE_")}
    env.update(
        DATABASE_URL=database_url(),
        FINALE_BASE_URL=sim.base_url,
        FINALE_ACCOUNT=sim.account,
        FINALE_API_KEY=sim.api_key,
        FINALE_API_SECRET=sim.api_secret,
        FINALE_REPORT_URL_INVENTORY=sim.report_url("inventory"),
        FINALE_REPORT_URL_VENDORS=sim.report_url("vendors"),
        FINALE_REPORT_URL_BOMS=sim.report_url("boms"),
        FINALE_READ_TIMEOUT="5",
        PYTHONPATH=str(ROOT),
    )
    return env


def manage(*args, env, timeout=120, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        **kwargs,
    )


class BodyClient:
    """Serves one fixed report body whose end is (or is not) verified."""

    def __init__(self, body: bytes, *, verified: bool):
        self.body, self.verified = body, verified

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def open_report(self, url, *, what="report"):
        stream = io.BytesIO(self.body)
        stream.end_verified = self.verified
        return contextlib.nullcontext(stream)
