"""Read one Finale response through FinaleClient in this process and report its peak memory.

    python tests/scripts/client_peak_memory.py BASE_URL ACCOUNT KEY SECRET (REPORT_URL | orders) [--pyarrow]

Prints one JSON line: the error class and code the client raised (null when the body was read whole), the
bytes it read, and the peak resident memory before and after, in MiB. Used by tests/test_client_limits.py to prove that a
hostile response is refused with bounded memory; run by hand to measure.
"""

from __future__ import annotations

import json
import os
import resource
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def peak_mib() -> int:
    # VmHWM is this process image's own high-water mark. ru_maxrss is not: Linux carries the parent's peak
    # over fork and exec, so a child of a big pytest process would report the parent's memory.
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def main(argv: list[str]) -> dict:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "finalesync.settings")
    import django

    django.setup()
    from finalesync.client import Credentials, FinaleClient
    from finalesync.errors import FinaleError

    base_url, account, key, secret, target = argv[:5]
    use_pyarrow = "--pyarrow" in argv
    if use_pyarrow:
        import pyarrow.csv as pa_csv
    baseline = peak_mib()
    result: dict = {"error": None, "code": None, "message": None, "bytes_read": None}
    try:
        with FinaleClient(Credentials(base_url, account, key, secret)) as client:
            if target == "orders":
                collection = client.order_collection()
                result["bytes_read"] = collection.bytes_read
            else:
                with client.open_report(target) as body:
                    if use_pyarrow:
                        for _batch in pa_csv.open_csv(body):
                            pass
                    else:
                        while body.read(1 << 20):  # pyarrow's block size
                            pass
                    result["bytes_read"] = body.bytes_read
    except FinaleError as exc:
        result.update(error=type(exc).__name__, code=exc.code, message=str(exc))
    result.update(baseline_mib=baseline, peak_mib=peak_mib())
    return result


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:])))
