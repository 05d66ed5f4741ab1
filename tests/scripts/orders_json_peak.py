"""Peak memory of decoding an order collection of a given size, as FinaleClient.order_collection does it.

    python tests/scripts/orders_json_peak.py [MiB]     (default 64)

Generates the simulator's column-major JSON for enough orders to reach the size, then measures in a fresh
child process: bytes as received, str as decoded, json.loads. Prints one JSON line. The figure behind the
default FINALE_MAX_ORDERS_BYTES in settings.py.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def generate(path: Path, size: int) -> int:
    sys.path.insert(0, str(ROOT))
    from finalesync.simulator.data import Dataset, orders_json_chunks, resolve_counts

    # Bytes per order measured on a small sample, then enough orders for the size.
    sample = Dataset(1, "demo", resolve_counts(10_000, {"purchase_orders": 2_000}))
    per_order = sum(len(p.encode()) for p in orders_json_chunks(sample, range(2_000))) / 2_000
    count = int(size / per_order)
    ds = Dataset(1, "demo", resolve_counts(max(count, 10_000), {"purchase_orders": count}))
    with path.open("w", encoding="utf-8") as out:
        for piece in orders_json_chunks(ds, range(count)):
            out.write(piece)
    return count


def hwm_kib() -> int:
    # The process image's own peak; ru_maxrss would include the parent's (Linux keeps it across exec).
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def child(path: str) -> None:
    base = hwm_kib()
    with open(path, "rb") as f:
        data = bytearray(f.read())
    text = data.decode("utf-8")
    del data
    decoded = json.loads(text)
    del text
    peak = hwm_kib()
    print(
        json.dumps(
            {"orders": len(decoded["orderId"]), "baseline_mib": base // 1024, "peak_mib": peak // 1024}
        )
    )


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        child(sys.argv[2])
        sys.exit(0)
    mib = int(sys.argv[1]) if len(sys.argv) > 1 else 64
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "orders.json"
        count = generate(path, mib * 1024 * 1024)
        size = os.path.getsize(path)
        result = subprocess.run(
            [sys.executable, __file__, "--child", str(path)], capture_output=True, text=True, check=True
        )
        figures = json.loads(result.stdout)
        print(json.dumps({"bytes": size, "generated_orders": count, **figures}))
