"""An index for the analytics page's run-duration percentiles: per type, runs in duration order, covering the
window and outcome filters, so the run at a given rank is an index walk instead of a sort of every run.

It is on the engine's table (finalesync_syncrun) but only the analytics page uses it, so it lives here, in raw
SQL both SQLite and PostgreSQL accept."""

from django.db import migrations

INDEX = "analytics_syncrun_type_duration"


class Migration(migrations.Migration):
    dependencies = [
        ("finalesync", "0002_initial"),
        ("health", "0007_analytics_days"),
    ]

    operations = [
        migrations.RunSQL(
            f"CREATE INDEX {INDEX} ON finalesync_syncrun (data_type, duration_ms, started_at, outcome)",
            f"DROP INDEX {INDEX}",
        ),
    ]
