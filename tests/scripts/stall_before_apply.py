"""Run a sync that stalls between comparing and applying (longer than its SQLite lease lives), then prints its
result as JSON. Used by test_lost_lock.py: another worker takes the type over while this one stalls."""

import json
import os
import sys
import time

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "finalesync.settings")
django.setup()

from finalesync import staging  # noqa: E402
from finalesync.sync import sync_data_type  # noqa: E402

marker, data_type, stall = sys.argv[1], sys.argv[2], float(sys.argv[3])
original_diff = staging.Staging.diff


def diff_then_stall(self, **kwargs):
    result = original_diff(self, **kwargs)
    with open(marker, "w") as f:
        f.write("compared")
    time.sleep(stall)  # a stuck disk, a paused VM: no heartbeat renews the lease meanwhile
    return result


staging.Staging.diff = diff_then_stall
print(json.dumps(sync_data_type(data_type=data_type, force=True).as_json()))
