"""Start the health history with each type's status as it stands: one HealthChange per connection-health row,
at the time that status was last confirmed (`last_check_time`), with `previous` blank (history begins)."""

from django.db import migrations
from django.utils import timezone


def seed(apps, schema_editor):
    ConnectionHealth = apps.get_model("health", "ConnectionHealth")
    HealthChange = apps.get_model("health", "HealthChange")
    already = set(HealthChange.objects.values_list("data_type", flat=True).distinct())
    HealthChange.objects.bulk_create(
        HealthChange(
            data_type=row.data_type,
            at=row.last_check_time or row.updated_at or timezone.now(),
            status=row.status,
            previous="",
        )
        for row in ConnectionHealth.objects.exclude(data_type__in=already)
    )


def unseed(apps, schema_editor):
    apps.get_model("health", "HealthChange").objects.filter(previous="").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("health", "0005_health_changes"),
    ]

    operations = [migrations.RunPython(seed, unseed)]
