#!/usr/bin/env python
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "finalesync.settings")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line(sys.argv)
    except ImproperlyConfigured as exc:
        # A setting that cannot work (DATABASE_URL=notaurl, a missing key): one line, not a traceback.
        sys.stderr.write(f"finalesync: configuration error: {exc}\n")
        sys.exit(3 if sys.argv[1:2] == ["synchealth"] else 1)
