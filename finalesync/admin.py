"""Admin for the sync engine: the Finale connection (write-only secrets), data types with their manual
actions, sync runs, the audit log (read-only: they are history) and the mirrored Finale tables (read-only:
the next sync would overwrite any edit)."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import FieldDoesNotExist, PermissionDenied
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.templatetags.static import static
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from . import actions, audit, history, texts
from .datatypes import registry
from .models import AuditLog, DataTypeConfig, FinaleConnection, ScheduleState, SyncRun

ENV_WINS = "Set in the environment ({}): the environment wins over this value."

# The product's name on every admin page and on the login page (templates/admin/base_site.html adds the icon).
admin.site.site_header = "finalesync"
admin.site.site_title = "finalesync admin"
admin.site.index_title = "Finale Inventory sync: settings and history"
# The list pages need the width (ten columns and a filter panel must fit 1400 px: tests/test_browser.py);
# the home page and the breadcrumbs lead to every model instead of a sidebar repeating the home page.
admin.site.enable_nav_sidebar = False


def admin_actor(request) -> audit.Actor:
    return audit.Actor.for_user(request.user, AuditLog.Source.ADMIN)


def run_action(modeladmin, request, action, targets, **kwargs) -> None:
    """Call one finalesync.actions function per target and report each outcome as a message."""
    for target in targets:
        try:
            modeladmin.message_user(request, action(actor=admin_actor(request), **target, **kwargs))
        except audit.ActionRefused as exc:
            modeladmin.message_user(request, str(exc), level=messages.ERROR)


def local_time(value) -> str | None:
    """A time for an admin column: in TIME_ZONE with the zone's name ('14:35 CET', the date when not today),
    how long ago on hover. None shows as the admin's empty value."""
    if value is None:
        return None
    return format_html(
        '<time datetime="{}" title="{}">{}</time>', value.isoformat(), texts.ago(value), texts.clock(value)
    )


def local_quantity(value) -> str | None:
    """A quantity without the column's padding: 12, 12.5 and 1200 rather than 12.0000, 12.5000, 1.2E+3."""
    if value is None:
        return None
    return f"{value.normalize():f}"


def _local_time_column(name: str, description: str):
    @admin.display(description=description, ordering=name)
    def show(obj):
        return local_time(getattr(obj, name))

    return show


class ProjectAdmin(admin.ModelAdmin):
    """Base of this project's admins: datetime columns say their zone (texts.clock, as the dashboard and the
    commands do) instead of Django's zone-less 'Jan. 5, 2026, 2:35 p.m.'."""

    def __init__(self, model, admin_site):
        super().__init__(model, admin_site)
        for name in self.list_display:
            if isinstance(name, str) and self._is_datetime(name):
                setattr(self, f"local_{name}", _local_time_column(name, self._label(name)))

    def _is_datetime(self, name: str) -> bool:
        try:
            return isinstance(self.model._meta.get_field(name), models.DateTimeField)
        except FieldDoesNotExist:
            return False

    def _label(self, name: str) -> str:
        return str(self.model._meta.get_field(name).verbose_name)

    def get_list_display(self, request):
        return [
            f"local_{name}" if isinstance(name, str) and self._is_datetime(name) else name
            for name in super().get_list_display(request)
        ]


class ReadOnlyAdmin(ProjectAdmin):
    """History: viewable, never added, edited or deleted by hand."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def secret_state(stored: str, env_name: str | None = None) -> str:
    if env_name and _env(env_name):
        return f"set in the environment ({env_name})"
    return "set" if stored else "not set"


def write_only_field(label: str, help_text: str, *, autocomplete: str = "off") -> forms.CharField:
    """A form field for a secret: never rendered back, empty means "keep the stored value"."""
    return forms.CharField(
        label=label,
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": autocomplete}),
        help_text=help_text,
    )


def apply_write_only(obj, form, *fields: str) -> list[str]:
    """Copy each `new_<field>` (or `clear_<field>`) of a valid form onto `obj`; return what changed. A value
    entered again unchanged is not a change (it must not lift "needs a person")."""
    changed = []
    for field in fields:
        new = form.cleaned_data.get(f"new_{field}")
        if new:
            if new != getattr(obj, field):
                setattr(obj, field, new)
                changed.append(field)
        elif form.cleaned_data.get(f"clear_{field}") and getattr(obj, field):
            setattr(obj, field, "")
            changed.append(f"{field} (removed)")
    return changed


def _env(name: str) -> bool:
    if name.startswith("FINALE_REPORT_URL_"):
        return bool(settings.FINALE_REPORT_URLS.get(name.removeprefix("FINALE_REPORT_URL_").lower()))
    return bool(getattr(settings, name, ""))


# --- the Finale connection ---------------------------------------------------------------------------------
CONNECTION_SECRETS = ("api_key", "api_secret")


class FinaleConnectionForm(forms.ModelForm):
    """The account and write-only key and secret. There is no host field: credentials go only to the host in
    the environment (FINALE_BASE_URL)."""

    new_api_key = write_only_field(
        "New API key", "Write-only: the stored key is never shown. Leave empty to keep it."
    )
    clear_api_key = forms.BooleanField(label="Remove the stored API key", required=False)
    new_api_secret = write_only_field(
        "New API secret",
        "Write-only: the stored secret is never shown. Leave empty to keep it.",
        autocomplete="new-password",
    )
    clear_api_secret = forms.BooleanField(label="Remove the stored API secret", required=False)

    class Meta:
        model = FinaleConnection
        fields = ["account"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field, env_name in (
            ("account", "FINALE_ACCOUNT"),
            ("new_api_key", "FINALE_API_KEY"),
            ("new_api_secret", "FINALE_API_SECRET"),
        ):
            # A view-only user's form has no fields at all.
            if field in self.fields and _env(env_name):
                self.fields[field].help_text = ENV_WINS.format(env_name)

    def clean(self):
        data = super().clean()
        for name in CONNECTION_SECRETS:
            if data.get(f"new_{name}") and data.get(f"clear_{name}"):
                raise forms.ValidationError(f"Enter a new {name.replace('_', ' ')} or remove it, not both.")
        # Whoever points the connection at another account must know that account's key and secret: the
        # stored ones are never carried over to it.
        if "account" in self.changed_data and self.instance.pk:
            missing = [n for n in CONNECTION_SECRETS if not data.get(f"new_{n}")]
            if missing:
                raise forms.ValidationError(
                    "Changing the account needs that account's credentials: enter the API key and secret "
                    "again (the stored ones are not carried over)."
                )
        return data


@admin.register(FinaleConnection)
class FinaleConnectionAdmin(ProjectAdmin):
    form = FinaleConnectionForm
    list_display = [
        "__str__",
        "account",
        "api_key_state",
        "api_secret_state",
        "credentials_changed_at",
        "updated_at",
    ]
    readonly_fields = [
        "finale_host",
        "from_environment",
        "api_key_state",
        "api_secret_state",
        "credentials_changed_at",
        "updated_at",
    ]
    fieldsets = [
        (None, {"fields": ["finale_host", "from_environment", "account"]}),
        ("API key", {"fields": ["api_key_state", "new_api_key", "clear_api_key"]}),
        ("API secret", {"fields": ["api_secret_state", "new_api_secret", "clear_api_secret"]}),
        ("History", {"fields": ["credentials_changed_at", "updated_at"]}),
    ]

    @admin.display(description="Finale host")
    def finale_host(self, obj):
        return (
            f"{settings.FINALE_BASE_URL} — from the environment (FINALE_BASE_URL); it cannot be changed here, "
            "so the credentials only ever go to this host."
        )

    @admin.display(description="From the environment")
    def from_environment(self, obj):
        names = [n for n in ("FINALE_ACCOUNT", "FINALE_API_KEY", "FINALE_API_SECRET") if _env(n)]
        if not names:
            return "nothing: the values below are the ones in use"
        return f"{', '.join(names)}: the environment wins over the values below"

    @admin.display(description="API key")
    def api_key_state(self, obj):
        return secret_state(obj.api_key, "FINALE_API_KEY")

    @admin.display(description="API secret")
    def api_secret_state(self, obj):
        return secret_state(obj.api_secret, "FINALE_API_SECRET")

    def has_add_permission(self, request):
        return not FinaleConnection.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        changes = [f for f in form.changed_data if f == "account"]
        changes += apply_write_only(obj, form, *CONNECTION_SECRETS)
        # Only new values can cure a credentials failure; a removal alone is recorded but lifts nothing.
        new = [c for c in changes if not c.endswith("(removed)")]
        if changes:
            obj.credentials_changed_at = timezone.now()
        super().save_model(request, obj, form, change)
        if new:
            self.message_user(
                request, actions.credentials_changed(actor=admin_actor(request), changed=changes)
            )
        elif changes:
            actions.record(
                actor=admin_actor(request),
                action=AuditLog.Action.CHANGE_CREDENTIALS,
                target="Finale connection",
                outcome=AuditLog.Outcome.SUCCESS,
                message=f"Removed {', '.join(c.removesuffix(' (removed)') for c in changes)}.",
            )


# --- data types ----------------------------------------------------------------------------------------------
# Written by the sync engine only: shown, never edited.
ENGINE_STATE_FIELDS = [
    "needs_attention",
    "attention_reason",
    "attention_code",
    "held_until",
    "hold_reason",
    "history_seq",
    "history_floor",
    "live_rows",
    "last_run_at",
    "last_skip_reason",
    "last_skipped_at",
    "lock_owner",
    "lock_expires_at",
    "created_at",
    "updated_at",
]


class DataTypeConfigForm(forms.ModelForm):
    new_report_url = write_only_field(
        "New report URL",
        "Write-only: the stored URL is never shown (it can carry credentials). Leave empty to keep it.",
    )
    clear_report_url = forms.BooleanField(label="Remove the stored report URL", required=False)

    class Meta:
        model = DataTypeConfig
        fields = [
            "enabled",
            "interval_minutes",
            "paused",
            "snoozed_until",
            "max_drop_ratio",
            "max_change_ratio",
            "max_emptied_ratio",
            "history_keep_syncs",
            "history_keep_days",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The model's validators explain each limit ("the interval is at least 1 minute"); the form field's
        # own bound (a PositiveIntegerField's 0) would otherwise answer a negative number with Django's
        # generic "greater than or equal to 0".
        for name, field in self.fields.items():
            try:
                model_field = DataTypeConfig._meta.get_field(name)
            except FieldDoesNotExist:
                continue
            for validator in model_field.validators:
                if isinstance(validator, MinValueValidator | MaxValueValidator) and (
                    validator.message != type(validator).message
                ):
                    field.error_messages[validator.code] = validator.message
        name = self.instance.data_type if self.instance and self.instance.pk else ""
        env_name = f"FINALE_REPORT_URL_{name.upper()}"
        if name and _env(env_name):
            self.fields["new_report_url"].help_text = ENV_WINS.format(env_name)

    def clean_new_report_url(self):
        value = self.cleaned_data["new_report_url"]
        if value and not value.lower().startswith(("http://", "https://", "/")):
            raise forms.ValidationError("A report URL starts with https:// (or a path on the Finale server).")
        return value


@admin.register(DataTypeConfig)
class DataTypeConfigAdmin(ProjectAdmin):
    form = DataTypeConfigForm
    list_display = [
        "data_type",
        "enabled",
        "schedule_state",
        "attention",
        "interval_minutes",
        "last_run_at",
        "next_run",
        "report_url_state",
        "max_drop_ratio",
    ]
    list_filter = ["enabled", "paused", "needs_attention"]
    search_fields = ["data_type", "attention_reason"]
    actions = ["sync_now", "pause", "resume"]
    readonly_fields = ["data_type", "report_url_state", *ENGINE_STATE_FIELDS]
    fieldsets = [
        (None, {"fields": ["data_type", "enabled", "interval_minutes", "paused", "snoozed_until"]}),
        ("Report URL", {"fields": ["report_url_state", "new_report_url", "clear_report_url"]}),
        (
            "Safety",
            {
                "fields": [
                    "max_drop_ratio",
                    "max_change_ratio",
                    "max_emptied_ratio",
                    "history_keep_syncs",
                    "history_keep_days",
                ]
            },
        ),
        ("State (set by the engine)", {"fields": ENGINE_STATE_FIELDS}),
    ]

    def has_add_permission(self, request):
        return False  # one row per registered data type, created by the engine

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="schedule")
    def schedule_state(self, obj):
        state, sentence = obj.schedule()
        # "needs attention" says why it waits.
        return ScheduleState(state).label if state == ScheduleState.WAITING else sentence

    @admin.display(description="needs attention", ordering="needs_attention")
    def attention(self, obj):
        """A warning, not Django's green tick for True: a type that waits for a person is a problem."""
        if not obj.needs_attention:
            return "no"
        return format_html(
            '<span class="needs-attention"><img src="{}" alt="Needs attention" width="14" height="14"> {}</span>',
            static("admin/img/icon-alert.svg"),
            texts.shorten(obj.attention_reason, 100) or "waits for a person",
        )

    @admin.display(description="next run")
    def next_run(self, obj):
        return local_time(obj.next_run_at())

    @admin.display(description="report URL")
    def report_url_state(self, obj):
        datatype = registry.DATATYPES.get(obj.data_type)
        if datatype is not None and datatype.source_kind != "report":
            return "not used (this type reads Finale's order API)"
        return secret_state(obj.report_url, f"FINALE_REPORT_URL_{obj.data_type.upper()}")

    def save_model(self, request, obj, form, change):
        url_changed = "".join(apply_write_only(obj, form, "report_url"))
        super().save_model(request, obj, form, change)
        settings_changed = [f for f in form.changed_data if f in form.Meta.fields]
        if settings_changed:
            audit.record(
                actor=admin_actor(request),
                action=AuditLog.Action.CHANGE_SETTINGS,
                target=obj.data_type,
                data_type=obj.data_type,
                outcome=AuditLog.Outcome.SUCCESS,
                message="Changed " + ", ".join(f"{f} to {form.cleaned_data[f]}" for f in settings_changed),
            )
        if url_changed:
            self.message_user(
                request,
                actions.credentials_changed(
                    actor=admin_actor(request), changed=[url_changed], data_type=obj.data_type
                ),
            )

    @admin.action(description="Sync now (in the background)", permissions=["change"])
    def sync_now(self, request, queryset):
        run_action(self, request, actions.sync_now, [{"data_type": c.data_type} for c in queryset])

    @admin.action(description="Pause scheduled syncs", permissions=["change"])
    def pause(self, request, queryset):
        run_action(self, request, actions.pause, [{"data_type": c.data_type} for c in queryset])

    @admin.action(description="Resume scheduled syncs", permissions=["change"])
    def resume(self, request, queryset):
        run_action(self, request, actions.resume, [{"data_type": c.data_type} for c in queryset])


# --- history -------------------------------------------------------------------------------------------------
@admin.register(SyncRun)
class SyncRunAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "started_at",
        "data_type",
        "trigger_by",
        "outcome_code",
        "items",
        "changes",
        "duration",
        "links",
    ]
    list_filter = ["outcome", "data_type", "trigger", "forced", "confirmed", "started_at"]
    search_fields = ["data_type", "triggered_by", "error", "error_code", "skip_reason"]
    readonly_fields = ["links"]

    # Fewer, denser columns than the model has fields, so the list fits a 1400 px screen with its filters.
    @admin.display(description="trigger", ordering="trigger")
    def trigger_by(self, obj):
        by = "" if obj.triggered_by in ("", "system") else f" · {obj.triggered_by}"
        extra = " (confirmed)" if obj.confirmed else " (forced)" if obj.forced else ""
        return f"{obj.get_trigger_display()}{by}{extra}"

    @admin.display(description="outcome", ordering="outcome")
    def outcome_code(self, obj):
        if not obj.error_code:
            return obj.get_outcome_display()
        return format_html('{}<br><span class="quiet">{}</span>', obj.get_outcome_display(), obj.error_code)

    @admin.display(description="items", ordering="item_count")
    def items(self, obj):
        return f"{obj.item_count:,}"

    @admin.display(description="created · updated · deleted")
    def changes(self, obj):
        return f"+{obj.created:,} ~{obj.updated:,} −{obj.deleted:,}"

    @admin.display(description="duration", ordering="duration_ms")
    def duration(self, obj):
        return texts.duration(obj.duration_ms / 1000)

    @admin.display(description="history")
    def links(self, obj):
        if obj.pk is None or obj.history_seq is None:
            return "—"
        parts = []
        if obj.changed:
            parts.append(format_html('<a href="{}">what changed</a>', reverse("run-changes", args=[obj.pk])))
        config = DataTypeConfig.objects.filter(data_type=obj.data_type).first()
        if config and obj.changed and history.is_restorable(config, obj.history_seq):
            url = reverse("admin:finalesync_syncrun_restore", args=[obj.pk])
            parts.append(format_html('<a class="button" href="{}">Restore to this…</a>', url))
        return format_html_join(" ", "{}", ((p,) for p in parts)) if parts else "—"

    def has_restore_permission(self, request):
        return request.user.has_perm("finalesync.restore_syncrun")

    def get_urls(self):
        custom = [
            path(
                "<int:run_id>/restore/",
                self.admin_site.admin_view(self.restore_view),
                name="finalesync_syncrun_restore",
            )
        ]
        return custom + super().get_urls()

    def restore_view(self, request, run_id):
        """The confirmation page (what the restore would change); POST queues the restore as a task."""
        if not self.has_restore_permission(request):
            raise PermissionDenied
        changelist = reverse("admin:finalesync_syncrun_changelist")
        if request.method == "POST":
            run_action(
                self,
                request,
                actions.queue_restore,
                [{"run_id": run_id}],
                reason=request.POST.get("reason", "").strip()[:500],
                pause_type=request.POST.get("pause") == "1",
            )
            return HttpResponseRedirect(changelist)
        try:
            preview = actions.preview_restore(run_id=run_id)
        except audit.ActionRefused as exc:
            self.message_user(request, str(exc), level=messages.ERROR)
            return HttpResponseRedirect(changelist)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Restore {preview.data_type} to the state after run #{run_id}?",
            "opts": self.model._meta,
            "preview": preview,
            "cancel_url": changelist,
            "actor": admin_actor(request).name,
        }
        return TemplateResponse(request, "admin/finalesync/syncrun/restore_confirm.html", context)


@admin.register(AuditLog)
class AuditLogAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "username", "source", "action", "target", "outcome", "short_message"]
    list_filter = ["action", "outcome", "source", "data_type", "created_at"]
    search_fields = ["username", "target", "message", "reason"]

    @admin.display(description="message")
    def short_message(self, obj):
        return texts.shorten(obj.message, 120)


# --- the mirrored Finale tables: one read-only admin per registered data type --------------------------------
def _quantity_column(field):
    @admin.display(description=field.verbose_name, ordering=field.name)
    def show(self, obj):
        return local_quantity(getattr(obj, field.name))

    return show


def _mirror_admin(datatype) -> type[admin.ModelAdmin]:
    opts = datatype.model._meta
    # The natural key is the first column: the fields it is made of would only repeat it.
    keys = getattr(datatype, "key_columns", ())
    shown = [f for f in datatype.fields if f != "natural_key" and f not in keys][:5]
    text = [
        f.name
        for f in opts.get_fields()
        if f.name in datatype.fields and f.get_internal_type() in ("CharField", "TextField")
    ][:3]
    # Quantities are stored with four decimals; people read 12, not 12.0000 (list and detail alike).
    quantities = {f.name: f for f in opts.concrete_fields if isinstance(f, models.DecimalField)}

    def shown_as(name: str) -> str:
        return f"{name}_shown" if name in quantities else name

    # The key, the data, then what finalesync keeps about the row (unknown report columns, stamps).
    last = ("extra", "created_at", "updated_at")
    detail = [
        "natural_key",
        *(
            shown_as(f.name)
            for f in opts.concrete_fields
            if not f.primary_key and f.name not in ("natural_key", *last)
        ),
        *last,
    ]

    class MirrorAdmin(ReadOnlyAdmin):
        change_list_template = "admin/finalesync/mirror_change_list.html"
        list_display = ["natural_key", *(shown_as(f) for f in shown), "updated_at"]
        search_fields = ["natural_key", *text]
        list_filter = ["updated_at"]
        fields = detail
        readonly_fields = [f"{name}_shown" for name in quantities]

    for name, field in quantities.items():
        setattr(MirrorAdmin, f"{name}_shown", _quantity_column(field))
    MirrorAdmin.__name__ = f"{datatype.model.__name__}Admin"
    return MirrorAdmin


for _datatype in registry.DATATYPES.values():
    admin.site.register(_datatype.model, _mirror_admin(_datatype))
