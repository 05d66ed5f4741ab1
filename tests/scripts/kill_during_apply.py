"""Run a sync that stops inside the apply transaction (after its writes, before commit) and waits to be killed.

Used by test_crash_safety.py: the test SIGKILLs this process once MARKER exists.
"""

import os
import sys
import time

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "finalesync.settings")
django.setup()

from finalesync import staging  # noqa: E402
from finalesync.sync import sync_data_type  # noqa: E402

marker, data_type = sys.argv[1], sys.argv[2]
original_apply = staging.Staging.apply


def apply_then_hang(self, **kwargs):
    counts = original_apply(self, **kwargs)
    with open(marker, "w") as f:
        f.write(f"{counts.created} {counts.updated} {counts.deleted}")
    time.sleep(600)
    return counts


staging.Staging.apply = apply_then_hang
sync_data_type(data_type=data_type, force=True)
