"""Admin for connection health (read-only: the sync engine writes it; graded as the dashboard does) and for
alert channels (webhook URLs and signing secrets write-only), alert state and notifications (history)."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from finalesync.admin import (
    ProjectAdmin,
    ReadOnlyAdmin,
    admin_actor,
    apply_write_only,
    secret_state,
    write_only_field,
)
from finalesync.audit import ActionRefused, record
from finalesync.datatypes import registry
from finalesync.models import AuditLog, DataTypeConfig

from . import actions as health_actions
from .alerts import Event
from .grading import assess
from .models import AlertChannel, AlertState, AnalyticsDay, ConnectionHealth, HealthChange, Notification
from .system import get_sync_system_health


@admin.register(ConnectionHealth)
class ConnectionHealthAdmin(ReadOnlyAdmin):
    list_display = [
        "data_type",
        "status",
        "grade",
        "item_count",
        "consecutive_failures",
        "last_success_time",
        "last_failure_time",
        "last_check_time",
        "state",
    ]
    list_filter = ["status", "last_success_time"]
    search_fields = ["data_type", "error_message"]

    def get_queryset(self, request):
        interval = DataTypeConfig.objects.filter(data_type=OuterRef("data_type")).values("interval_minutes")[
            :1
        ]
        return super().get_queryset(request).annotate(interval_minutes=Subquery(interval))

    @admin.display(description="grade")
    def grade(self, obj):
        minutes = getattr(obj, "interval_minutes", None) or 60
        graded = assess(
            status=obj.status,
            consecutive_failures=obj.consecutive_failures,
            last_success_time=obj.last_success_time,
            last_failure_time=obj.last_failure_time,
            interval=timedelta(minutes=minutes),
            now=timezone.now(),
        )
        return f"{graded.grade}{' (stale)' if graded.stale else ''}"

    @admin.display(description="state")
    def state(self, obj):
        """The type's one state and next step, as the dashboard card says it (health/state.py)."""
        one = get_sync_system_health().by_type().get(obj.data_type)
        return f"{one.summary} — {one.next_step}" if one else "—"


# --- alerts (models of the alerts work; credentials write-only like the Finale secret) -----------------------
EVENT_LABELS = {
    Event.DEGRADED: "degraded — a recoverable failure (network, timeout, 429, 5xx)",
    Event.UNHEALTHY: "unhealthy — a failure that needs a person, or the third in a row",
    Event.RECOVERED: "recovered — healthy again",
    Event.RETRY_EXHAUSTED: "retry exhausted — the retry queue gave up",
    Event.ROLLED_BACK: "rolled back — empty data was refused",
    Event.SUSPICIOUS: "suspicious — a sync refused for a large drop or change",
    Event.REMINDER: "reminder — while a type stays unhealthy",
}


def event_choices() -> list[tuple[str, str]]:
    return [(kind, EVENT_LABELS.get(kind, kind.replace("_", " "))) for kind in Event.ALL]


def data_type_choices() -> list[tuple[str, str]]:
    return [(name, f"{registry.get(name).label} ({name})") for name in registry.NAMES]


class AlertChannelForm(forms.ModelForm):
    # The model keeps JSON lists; people tick the values that exist (an empty list means "all").
    event_kinds = forms.MultipleChoiceField(
        label="Event kinds",
        choices=event_choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Send only these events. None ticked: every event.",
    )
    data_types = forms.MultipleChoiceField(
        label="Data types",
        choices=data_type_choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Send only about these data types. None ticked: every data type.",
    )
    new_url = write_only_field(
        "New webhook URL",
        "Write-only: a webhook URL is a credential and is never shown. Leave empty to keep it.",
    )
    clear_url = forms.BooleanField(label="Remove the stored webhook URL", required=False)
    new_signing_secret = write_only_field(
        "New signing secret",
        "Write-only (generic webhooks). Leave empty to keep it.",
        autocomplete="new-password",
    )
    clear_signing_secret = forms.BooleanField(label="Remove the stored signing secret", required=False)

    class Meta:
        model = AlertChannel
        fields = ["name", "kind", "enabled", "email_to", "event_kinds", "data_types"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # A value stored before it stopped existing (a removed data type) is not offered, and not kept.
        for name in ("event_kinds", "data_types"):
            if name in self.fields and isinstance(self.initial.get(name), list):
                valid = {value for value, _ in self.fields[name].choices}
                self.initial[name] = [v for v in self.initial[name] if v in valid]


@admin.register(AlertChannel)
class AlertChannelAdmin(ProjectAdmin):
    form = AlertChannelForm
    list_display = [
        "name",
        "kind",
        "enabled",
        "scope",
        "url_state",
        "signing_secret_state",
        "from_environment",
        "updated_at",
    ]
    list_filter = ["kind", "enabled", "from_environment"]
    search_fields = ["name", "email_to"]
    readonly_fields = ["url_state", "signing_secret_state", "from_environment", "created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["name", "kind", "enabled", "email_to", "event_kinds", "data_types"]}),
        ("Webhook", {"fields": ["url_state", "new_url", "clear_url"]}),
        ("Signing", {"fields": ["signing_secret_state", "new_signing_secret", "clear_signing_secret"]}),
        ("History", {"fields": ["from_environment", "created_at", "updated_at"]}),
    ]

    actions = ["send_test"]

    # Sends real requests with the stored credentials: for those who may change channels, not view them.
    @admin.action(description="Send test notification", permissions=["change"])
    def send_test(self, request, queryset):
        for channel in queryset:
            try:
                self.message_user(
                    request, health_actions.send_test_alert(channel_id=channel.pk, actor=admin_actor(request))
                )
            except ActionRefused as exc:
                self.message_user(request, str(exc), level=messages.ERROR)

    @admin.display(description="sends")
    def scope(self, obj):
        events = ", ".join(k.replace("_", " ") for k in obj.event_kinds) if obj.event_kinds else "every event"
        types = ", ".join(obj.data_types) if obj.data_types else "every data type"
        return f"{events} · {types}"

    @admin.display(description="webhook URL")
    def url_state(self, obj):
        return secret_state(obj.url)

    @admin.display(description="signing secret")
    def signing_secret_state(self, obj):
        return secret_state(obj.signing_secret)

    def save_model(self, request, obj, form, change):
        changed = [f for f in form.changed_data if f in form.Meta.fields]
        changed += apply_write_only(obj, form, "url", "signing_secret")
        super().save_model(request, obj, form, change)
        if changed:
            record(
                actor=admin_actor(request),
                action=AuditLog.Action.CHANGE_SETTINGS,
                target=f"alert channel {obj.name}",
                outcome=AuditLog.Outcome.SUCCESS,
                message="Changed " + ", ".join(changed),
            )


@admin.register(AlertState)
class AlertStateAdmin(ReadOnlyAdmin):
    list_display = ["data_type", "last_status", "status_changed_at", "last_event", "last_alert_at"]
    list_filter = ["last_status", "last_event"]
    search_fields = ["data_type"]


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "channel", "event", "data_type", "status", "attempts", "sent_at", "subject"]
    list_filter = ["status", "event", "data_type", "channel", "created_at"]
    search_fields = ["subject", "body", "last_error", "data_type"]
    list_select_related = ["channel"]
    exclude = ["html"]


# --- retry analytics ------------------------------------------------------------------------------------------
@admin.register(HealthChange)
class HealthChangeAdmin(ReadOnlyAdmin):
    """Each change of a type's stored status (written by health/status_history.py): the analytics' availability."""

    list_display = ["at", "data_type", "previous", "status"]
    list_filter = ["data_type", "status", "at"]
    date_hierarchy = "at"


@admin.register(AnalyticsDay)
class AnalyticsDayAdmin(ReadOnlyAdmin):
    """The analytics page's stored days. Deleting one makes the next view summarise it again from the
    tables (as far as they still hold its rows)."""

    list_display = ["day", "time_zone", "outages_ended", "computed_at"]
    list_filter = ["time_zone"]
    fields = ["day", "time_zone", "computed_at"]  # the figures themselves are for the page, not for reading

    def has_delete_permission(self, request, obj=None):
        return request.user.has_perm("health.delete_analyticsday")

    @admin.display(description="outages ended")
    def outages_ended(self, obj):
        return len(obj.outages or [])
