"""Admin for the retry queue (Retry now / Cancel / Requeue), failure logs and backups (Restore this backup,
after a confirmation page that shows what will change). Logs and backups are history: read-only."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models.functions import Length
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from finalesync import actions
from finalesync.admin import ReadOnlyAdmin, admin_actor, run_action

from .models import Backup, BackupChunk, FailureLog, RetryItem


def _short(text: str, limit: int = 100) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


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
        "updated_at",
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
        return _short(obj.last_error_message)

    @admin.action(description="Retry now", permissions=["retry"])
    def retry_now(self, request, queryset):
        run_action(
            self,
            request,
            actions.retry_now,
            [{"item_id": pk} for pk in queryset.values_list("pk", flat=True)],
        )

    @admin.action(description="Cancel", permissions=["retry"])
    def cancel(self, request, queryset):
        run_action(
            self,
            request,
            actions.cancel_retry,
            [{"item_id": pk} for pk in queryset.values_list("pk", flat=True)],
        )

    @admin.action(description="Requeue with a fresh budget", permissions=["retry"])
    def requeue(self, request, queryset):
        run_action(
            self,
            request,
            actions.requeue_retry,
            [{"item_id": pk} for pk in queryset.values_list("pk", flat=True)],
        )


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
        "trigger",
        "backup_link",
    ]
    list_filter = ["data_type", "error_code", "recoverable", "rolled_back", "trigger", "created_at"]
    search_fields = ["error_message", "error_code", "data_type"]
    list_select_related = ["backup"]

    @admin.display(description="message")
    def message(self, obj):
        return _short(obj.error_message)

    @admin.display(description="recovery")
    def recovery(self, obj):
        if not obj.recovery_attempted:
            return "not needed" if obj.backup_available else "—"
        return "restored" if obj.recovery_succeeded else "failed"

    @admin.display(description="backup")
    def backup_link(self, obj):
        if not obj.backup_id:
            return "—"
        url = reverse("admin:retries_backup_change", args=[obj.backup_id])
        return format_html('<a href="{}">#{}</a>', url, obj.backup_id)


@admin.register(Backup)
class BackupAdmin(ReadOnlyAdmin):
    list_display = ["id", "data_type", "created_at", "reason", "row_count", "size", "is_good", "restore_link"]
    list_filter = ["data_type", "reason", "is_good", "created_at"]
    search_fields = ["data_type", "checksum"]
    actions = ["restore"]
    readonly_fields = ["restore_link"]

    def has_restore_permission(self, request):
        return request.user.has_perm("retries.change_backup")

    @admin.display(description="size", ordering="size_bytes")
    def size(self, obj):
        return f"{obj.size_bytes / 1024:,.0f} KiB"

    @admin.display(description="restore")
    def restore_link(self, obj):
        if obj.pk is None or obj.row_count == 0:
            return "—"
        url = reverse("admin:retries_backup_restore", args=[obj.pk])
        return format_html('<a class="button" href="{}">Restore this backup…</a>', url)

    def get_urls(self):
        custom = [
            path(
                "<int:backup_id>/restore/",
                self.admin_site.admin_view(self.restore_view),
                name="retries_backup_restore",
            )
        ]
        return custom + super().get_urls()

    @admin.action(description="Restore this backup…", permissions=["restore"])
    def restore(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one backup to restore.", level=messages.WARNING)
            return None
        return HttpResponseRedirect(reverse("admin:retries_backup_restore", args=[queryset.get().pk]))

    def restore_view(self, request, backup_id):
        """The confirmation page (type, time, row count and what will change); POST restores."""
        if not self.has_restore_permission(request):
            raise PermissionDenied
        backup = get_object_or_404(Backup, pk=backup_id)
        changelist = reverse("admin:retries_backup_changelist")
        if request.method == "POST":
            run_action(
                self,
                request,
                actions.restore_backup,
                [{"backup_id": backup.pk}],
                reason=request.POST.get("reason", "").strip()[:500],
            )
            return HttpResponseRedirect(changelist)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Restore {backup.data_type} to backup #{backup.pk}?",
            "opts": self.model._meta,
            "backup": backup,
            "preview": actions.preview_restore(backup_id=backup.pk),
            "cancel_url": changelist,
            "actor": admin_actor(request).name,
        }
        return TemplateResponse(request, "admin/retries/backup/restore_confirm.html", context)


@admin.register(BackupChunk)
class BackupChunkAdmin(ReadOnlyAdmin):
    list_display = ["id", "backup", "seq", "size"]
    list_filter = ["backup__data_type"]
    search_fields = ["backup__id"]
    fields = ["backup", "seq", "size"]
    readonly_fields = ["size"]
    list_select_related = ["backup"]

    def get_queryset(self, request):
        # The compressed bytes stay in the database: a list of 1 MiB blobs is no use on a page.
        return super().get_queryset(request).defer("data").annotate(data_size=Length("data"))

    @admin.display(description="size", ordering="data_size")
    def size(self, obj):
        return f"{obj.data_size or 0:,} bytes"
