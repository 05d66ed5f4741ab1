"""Connection health per data type, in the table (and with the columns) the original system's SQL reads."""

from django.db import models
from django.utils import timezone


class HealthStatus(models.TextChoices):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"
    UNKNOWN = "unknown"


class ConnectionHealth(models.Model):
    data_type = models.CharField(max_length=50, primary_key=True)
    status = models.CharField(max_length=20, choices=HealthStatus.choices, default=HealthStatus.UNKNOWN)
    last_check_time = models.DateTimeField(default=timezone.now)
    item_count = models.IntegerField(default=0)
    error_message = models.TextField(null=True, blank=True)
    consecutive_failures = models.IntegerField(default=0)
    last_success_time = models.DateTimeField(null=True, blank=True)
    last_failure_time = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "sync_connection_health"
        ordering = ["data_type"]
        verbose_name = "connection health"
        verbose_name_plural = "connection health"

    def __str__(self):
        return f"{self.data_type}: {self.status}"
