"""Admin for the retry queue (Retry now / Cancel / Requeue) and the failure log (read-only: it is history)."""

from __future__ import annotations

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from finalesync import texts
from finalesync.admin import ReadOnlyAdmin, run_action
from finalesync.models import SyncRun

from . import actions
from .models import FailureLog, RetryItem


@admin.register(RetryItem)
class RetryItemAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "data_type",
        "operation",
        "status",
        "priority",
        "attempts",
        "next_retry_at",
        "error_code",
        "last_error",
        "created_by",
    ]
    list_filter = ["status", "data_type", "operation", "error_code", "priority", "created_at"]
    search_fields = ["data_type", "last_error_message", "error_code", "resolution", "created_by"]
    actions = ["retry_now", "cancel", "requeue"]

    def has_retry_permission(self, request):
        # The queue's own fields are never edited by hand; these actions are how a person changes it.
        return request.user.has_perm("retries.change_retryitem")

    @admin.display(description="tries")
    def attempts(self, obj):
        return f"{obj.retry_count}/{obj.max_retries}"

    @admin.display(description="last error")
    def last_error(self, obj):
        return texts.shorten(obj.last_error_message, 100)

    def _each(self, request, queryset, action):
        run_action(self, request, action, [{"item_id": pk} for pk in queryset.values_list("pk", flat=True)])

    @admin.action(description="Retry now", permissions=["retry"])
    def retry_now(self, request, queryset):
        self._each(request, queryset, actions.retry_now)

    @admin.action(description="Cancel", permissions=["retry"])
    def cancel(self, request, queryset):
        self._each(request, queryset, actions.cancel_retry)

    @admin.action(description="Requeue with a fresh budget", permissions=["retry"])
    def requeue(self, request, queryset):
        self._each(request, queryset, actions.requeue_retry)


class TriggerFilter(admin.SimpleListFilter):
    """The failure log keeps the trigger as plain text: filter by it with the sync runs' labels ('CLI')."""

    title = "trigger"
    parameter_name = "trigger"

    def lookups(self, request, model_admin):
        return SyncRun.Trigger.choices

    def queryset(self, request, queryset):
        return queryset.filter(trigger=self.value()) if self.value() else queryset


@admin.register(FailureLog)
class FailureLogAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "data_type",
        "error_code",
        "message",
        "recoverable",
        "rolled_back",
        "recovery",
        "record_count",
        "trigger_label",
        "run_link",
    ]
    list_filter = ["data_type", "error_code", "recoverable", "rolled_back", TriggerFilter, "created_at"]
    search_fields = ["error_message", "error_code", "data_type"]

    @admin.display(description="message")
    def message(self, obj):
        return texts.shorten(obj.error_message, 100)

    @admin.display(description="trigger", ordering="trigger")
    def trigger_label(self, obj):
        # The failure log keeps the run's trigger as plain text; say it as the sync runs do ("CLI").
        return SyncRun.Trigger(obj.trigger).label if obj.trigger in SyncRun.Trigger.values else obj.trigger

    @admin.display(description="recovery")
    def recovery(self, obj):
        if not obj.recovery_attempted:
            return "not needed" if obj.backup_available else "—"
        return f"restored to #{obj.restored_seq}" if obj.recovery_succeeded else "failed"

    @admin.display(description="run")
    def run_link(self, obj):
        if not obj.sync_run_id:
            return "—"
        url = reverse("admin:finalesync_syncrun_change", args=[obj.sync_run_id])
        return format_html('<a href="{}">#{}</a>', url, obj.sync_run_id)
