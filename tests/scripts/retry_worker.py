"""A retry processor in its own process, with a stand-in handler (no Finale needed).

retry_worker.py drain            — run the processor until nothing is due; each item records one SyncRun
retry_worker.py hang MARKER SECS — claim one item with a SECS lease, write MARKER, then hang (to be killed)
"""

import os
import sys
import time

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "finalesync.settings")
django.setup()

from finalesync.models import SyncRun  # noqa: E402
from finalesync.runs import RunResult as SyncResult  # noqa: E402
from retries.queue import process_retries  # noqa: E402


def record(item):
    SyncRun.objects.create(
        data_type=item.data_type, trigger="retry", outcome="success", triggered_by=str(os.getpid())
    )
    time.sleep(0.01)  # long enough for the workers to overlap
    return SyncResult(data_type=item.data_type, outcome="success")


if sys.argv[1] == "drain":
    while process_retries(limit=10, handler=record).processed:
        pass
elif sys.argv[1] == "hang":
    marker, lease = sys.argv[2], float(sys.argv[3])

    def hang(item):
        with open(marker, "w") as f:
            f.write(str(item.pk))
        time.sleep(600)

    process_retries(limit=1, handler=hang, lease_seconds=lease)
