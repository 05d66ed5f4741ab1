"""Settings for the test suite: the project's own settings with DEBUG off, as in production, and fixed
test-only keys (the real ones come from the environment). Set in os.environ first, so every subprocess a test
starts (`manage.py runsync`, `qcluster`, gunicorn...) reads the same keys and decrypts what the test stored."""

import os

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production-5e1c0b7a9f3d42c8a6b1e2f0d4c7")
os.environ.setdefault("FINALESYNC_ENCRYPTION_KEY", "dGVzdC1vbmx5LWtleS1ub3QtZm9yLXByb2R1Y3Rpb24=")

from finalesync.settings import *  # noqa: E402, F403
