"""The base of finalesync's commands: a database that cannot be reached or is not migrated is one clear line
on stderr and an exit status, never a traceback."""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand
from django.db import DatabaseError, connection


def database_problem(exc: BaseException) -> str:
    """One line saying what is wrong with the database and what to do."""
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
    lowered = text.lower()
    if "no such table" in lowered or ("relation" in lowered and "does not exist" in lowered):
        return f"the database is not migrated ({text}): run `python manage.py migrate`"
    if "does not exist" in lowered and "database" in lowered:
        return f"the database does not exist ({text}): create it, then run `python manage.py migrate`"
    where = connection.settings_dict.get("HOST") or connection.settings_dict.get("NAME") or "?"
    return f"cannot use the database at {where} ({text}): is it running and is DATABASE_URL right?"


class DatabaseCommand(BaseCommand):
    """Subclasses implement `run()` instead of `handle()`."""

    # The exit status when the database cannot be used (synchealth says "unknown" with 3).
    unavailable_exit = 1

    def handle(self, *args, **options):
        try:
            return self.run(*args, **options)
        except DatabaseError as exc:
            self.database_unavailable(exc, options)
            sys.exit(self.unavailable_exit)

    def database_unavailable(self, exc: BaseException, options: dict) -> None:
        self.stderr.write(f"finalesync: {database_problem(exc)}")

    def run(self, *args, **options):
        raise NotImplementedError
