"""`manage.py finalesim`: run the Finale simulator in the foreground for the demo or manual testing."""

from __future__ import annotations

import signal
import threading

from django.core.management.base import BaseCommand, CommandError

from finalesync.simulator import DATA_TYPES, FAULT_KINDS, SPELLINGS, FinaleSimulator, validate_fault


def parse_fault(spec: str) -> tuple[str, str]:
    """Split a `TYPE=KIND` fault option and validate it; raise CommandError with the valid choices."""
    data_type, sep, kind = spec.partition("=")
    if not sep or not data_type or not kind:
        raise CommandError(
            f"--fault must look like TYPE=KIND, got {spec!r}. Types: {', '.join(DATA_TYPES)}. "
            f"Kinds: {', '.join(FAULT_KINDS)}."
        )
    try:
        validate_fault(data_type.strip(), kind.strip())
    except ValueError as exc:
        raise CommandError(f"--fault {spec!r}: {exc}") from exc
    return data_type.strip(), kind.strip()


class Command(BaseCommand):
    help = "Serve a simulated Finale Inventory account (reports and orders) on 127.0.0.1 until Ctrl-C."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (0 = any free port)")
        parser.add_argument("--rows", type=int, default=500, help="inventory rows; other sizes follow")
        parser.add_argument("--seed", type=int, default=42, help="data seed: same seed, same data")
        parser.add_argument(
            "--fault",
            action="append",
            default=[],
            metavar="TYPE=KIND",
            help=f"start with a fault (repeatable). Types: {', '.join(DATA_TYPES)}. "
            f"Kinds: {', '.join(FAULT_KINDS)}",
        )
        parser.add_argument(
            "--spellings",
            choices=SPELLINGS,
            default="standard",
            help="report header spellings: standard, or alt (other spellings from finale-api.md)",
        )
        parser.add_argument("--account", default="demo")
        parser.add_argument("--api-key", default="sim-key")
        parser.add_argument("--api-secret", default="sim-secret-value")

    def handle(self, *args, **opts):
        faults = [parse_fault(spec) for spec in opts["fault"]]
        if opts["rows"] < 0:
            raise CommandError("--rows must be >= 0")
        sim = FinaleSimulator(
            port=opts["port"],
            rows=opts["rows"],
            seed=opts["seed"],
            account=opts["account"],
            api_key=opts["api_key"],
            api_secret=opts["api_secret"],
            spellings=opts["spellings"],
        )
        for data_type, kind in faults:
            sim.set_fault(data_type, kind)
        try:
            sim.start()
        except OSError as exc:
            raise CommandError(f"cannot listen on 127.0.0.1:{opts['port']}: {exc}") from exc
        out = self.stdout
        counts = ", ".join(f"{t} {n}" for t, n in sim.counts.items())
        out.write(f"Finale simulator at {sim.base_url} (account {sim.account!r}, seed {sim.seed}; {counts})")
        out.write(f"  orders:    {sim.orders_url}")
        for data_type in ("inventory", "vendors", "boms"):
            out.write(f"  {data_type + ':':<10} {sim.report_url(data_type)}")
        if faults:
            out.write("Faults: " + ", ".join(f"{t}={k}" for t, k in faults))
        if sim.spellings != "standard":
            out.write(f"Header spellings: {sim.spellings}")
        out.write(
            f"Control: GET {sim.base_url}/_sim/state, POST /_sim/faults ({{}} clears all), /_sim/mutate, "
            "/_sim/spellings, /_sim/reset"
        )
        # The secret is the simulator's own fake credential, printed so the env lines can be pasted as is.
        out.write("\nEnvironment for finalesync:")
        out.write(f"FINALE_BASE_URL={sim.base_url}")
        out.write(f"FINALE_ACCOUNT={sim.account}")
        out.write(f"FINALE_API_KEY={sim.api_key}")
        out.write(f"FINALE_API_SECRET={sim.api_secret}")
        for data_type in ("inventory", "vendors", "boms"):
            out.write(f"FINALE_REPORT_URL_{data_type.upper()}={sim.report_url(data_type)}")
        # Ctrl-C and SIGTERM both stop it; the handlers only set a flag, so the signal never lands in the middle
        # of printing or of stopping.
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        try:
            out.write("\nPress Ctrl-C to stop.")
            while not stop.wait(0.5):
                pass
        finally:
            sim.stop()
        out.write("Finale simulator stopped.")
