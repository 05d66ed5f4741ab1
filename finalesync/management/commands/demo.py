"""python manage.py demo — everything `make demo` promises, in one process tree.

Migrates the SQLite database, starts the bundled Finale simulator, points finalesync at it, runs a first
sync, installs the schedules, starts the django-q2 cluster and serves the dashboard. Ctrl-C stops it all.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from finalesync.datatypes import registry
from finalesync.models import DataTypeConfig, FinaleConnection, SyncRun
from finalesync.simulator import FinaleSimulator
from finalesync.sync import ensure_configs, sync_data_type

DEMO_USER = "admin"


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


class Command(BaseCommand):
    help = "Run the demo: simulator, first sync, scheduler and dashboard on 127.0.0.1."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000, help="dashboard port")
        parser.add_argument("--sim-port", type=int, default=8765, help="Finale simulator port")
        parser.add_argument("--rows", type=int, default=2000, help="inventory rows in the simulator")
        parser.add_argument("--no-serve", action="store_true", help="set up and sync, then exit")

    def handle(self, *args, port, sim_port, rows, no_serve, **options):
        for p in (port, sim_port):
            if not no_serve and not port_free(p):
                raise CommandError(f"port {p} is in use; pass --port/--sim-port or stop what runs there")
        # `kill` (SIGTERM) must clean up like Ctrl-C does: SystemExit runs the finally below.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        call_command("migrate", verbosity=0)
        self.stdout.write("Database migrated.")
        children: list[subprocess.Popen] = []
        manage = [sys.executable, str(Path(settings.BASE_DIR) / "manage.py")]
        # The simulator serves from a thread of this process for as long as the demo runs.
        sim = FinaleSimulator(port=sim_port, rows=rows, seed=42).start()
        try:
            self.stdout.write(f"Finale simulator on {sim.base_url} ({rows:,} inventory rows).")
            self.configure(sim)
            password = self.demo_user()
            for name in registry.NAMES:
                result = sync_data_type(
                    data_type=name, trigger=SyncRun.Trigger.MANUAL, force=True, user="demo"
                )
                self.stdout.write(f"  first sync of {name}: {result.outcome}, {result.item_count:,} rows")
            try:
                call_command("setupschedules", verbosity=0)
            except Exception as exc:  # noqa: BLE001 - the demo still shows data without the scheduler
                self.stderr.write(f"schedules not installed: {exc}")
            if no_serve:
                return
            cluster_log = Path(settings.VAR_DIR) / "qcluster.log"
            children.append(
                subprocess.Popen(
                    [*manage, "qcluster"], stdout=subprocess.DEVNULL, stderr=cluster_log.open("a")
                )
            )
            url = f"http://127.0.0.1:{port}/"
            self.stdout.write(
                self.style.SUCCESS(f"\nfinalesync is running: {url}\n  login: {DEMO_USER} / {password}\n")
                + f"  scheduler log: {cluster_log}\n"
                + "  (Ctrl-C stops the dashboard, the scheduler and the simulator)\n"
            )
            subprocess.run([*manage, "runserver", f"127.0.0.1:{port}", "--noreload"], check=False)
        except KeyboardInterrupt:
            pass
        finally:
            sim.stop()
            for child in children:
                child.terminate()
            for child in children:
                try:
                    child.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    child.kill()

    def configure(self, sim: FinaleSimulator) -> None:
        """Store the simulator's account and report URLs the way an operator would in the admin. Its host can
        only come from the environment, as in production: set here for this process and its children."""
        os.environ["FINALE_BASE_URL"] = settings.FINALE_BASE_URL = sim.base_url
        connection = FinaleConnection.load()
        connection.account = sim.account
        connection.api_key = sim.api_key
        connection.api_secret = sim.api_secret
        connection.save()
        configs = ensure_configs()
        for name, config in configs.items():
            if registry.get(name).source_kind == "report":
                DataTypeConfig.objects.filter(pk=config.pk).update(report_url="")
                config.report_url = sim.report_url(name)
                config.save(update_fields=["report_url"])
            DataTypeConfig.objects.filter(pk=config.pk).update(needs_attention=False, paused=False)

    def demo_user(self) -> str:
        password = secrets.token_urlsafe(9)
        user, _ = get_user_model().objects.get_or_create(
            username=DEMO_USER, defaults={"email": "admin@example.com"}
        )
        user.is_staff = user.is_superuser = True
        user.set_password(password)
        user.save()
        return password
