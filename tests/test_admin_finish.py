"""The admin feels finished (issue 12, items 9 and 10): alert channels pick event kinds and data types from
their valid values, data type settings explain what they refuse, a type that waits for a person is a warning,
quantities read as numbers, labels are spelled right, and every page carries the product's name and icon."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.apps import apps
from django.contrib import admin
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone

from finalesync.admin import DataTypeConfigForm
from finalesync.datatypes import registry
from finalesync.datatypes.inventory import InventoryItem
from finalesync.models import DataTypeConfig
from finalesync.sync import ensure_configs
from health.alerts import Event
from health.models import AlertChannel
from retries.models import FailureLog, RetryItem

from .opsdata import make_user

pytestmark = pytest.mark.django_db
OUR_APPS = ("finalesync", "health", "retries")
ADD_CHANNEL = "/admin/health/alertchannel/add/"


@pytest.fixture
def root(client):
    client.force_login(make_user("root", superuser=True))
    return client


# --- alert channels ------------------------------------------------------------------------------------------
def test_alert_channel_offers_event_kinds_and_data_types_as_checkboxes(root):
    page = root.get(ADD_CHANNEL).content.decode()
    for kind in Event.ALL:
        assert re.search(rf'<input type="checkbox" name="event_kinds" value="{kind}"', page), kind
    for name in registry.NAMES:
        assert re.search(rf'<input type="checkbox" name="data_types" value="{name}"', page), name
    assert '<textarea name="event_kinds"' not in page and '<textarea name="data_types"' not in page


def test_alert_channel_stores_the_ticked_values_as_lists(root):
    response = root.post(
        ADD_CHANNEL,
        {
            "name": "purchasing",
            "kind": "email",
            "enabled": "on",
            "email_to": "buyers@example.com",
            "event_kinds": ["unhealthy", "recovered"],
            "data_types": ["purchase_orders"],
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    channel = AlertChannel.objects.get(name="purchasing")
    assert channel.event_kinds == ["unhealthy", "recovered"] and channel.data_types == ["purchase_orders"]
    assert channel.wants("unhealthy", "purchase_orders") and not channel.wants("degraded", "purchase_orders")
    listing = root.get("/admin/health/alertchannel/").content.decode()
    assert "unhealthy, recovered · purchase_orders" in listing


def test_alert_channel_refuses_a_value_that_does_not_exist(root):
    response = root.post(
        ADD_CHANNEL, {"name": "odd", "kind": "email", "email_to": "a@example.com", "event_kinds": ["explode"]}
    )
    assert response.status_code == 200
    assert "Select a valid choice. explode is not one of the available choices." in response.content.decode()
    assert not AlertChannel.objects.filter(name="odd").exists()


def test_alert_channel_with_nothing_ticked_sends_everything(root):
    root.post(ADD_CHANNEL, {"name": "all", "kind": "email", "enabled": "on", "email_to": "a@example.com"})
    channel = AlertChannel.objects.get(name="all")
    assert (channel.event_kinds, channel.data_types) == ([], [])
    assert channel.wants("degraded", "boms")


# --- data type settings --------------------------------------------------------------------------------------
def settings_form(**changes):
    config = ensure_configs()["inventory"]
    data = {
        "enabled": "on",
        "interval_minutes": "5",
        "max_drop_ratio": "0.2",
        "max_change_ratio": "0.75",
        "max_emptied_ratio": "0.5",
        "history_keep_syncs": "50",
        "history_keep_days": "14",
        **changes,
    }
    return DataTypeConfigForm(data=data, instance=config)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("interval_minutes", "0", "the interval is at least 1 minute"),
        ("interval_minutes", "-5", "the interval is at least 1 minute"),
        ("max_drop_ratio", "0", "must be more than 0"),
        ("max_drop_ratio", "-0.1", "must be more than 0"),
        ("max_drop_ratio", "1.5", "must be at most 1 (all rows)"),
        ("max_change_ratio", "0", "must be more than 0"),
        ("max_change_ratio", "2", "must be at most 1 (all rows)"),
        ("max_emptied_ratio", "0", "must be more than 0"),
        ("max_emptied_ratio", "1.01", "must be at most 1 (all rows)"),
        ("history_keep_syncs", "0", "keep at least 1 sync"),
        ("history_keep_syncs", "-1", "keep at least 1 sync"),
        ("history_keep_days", "0", "keep at least 1 day"),
        ("history_keep_days", "-3", "keep at least 1 day"),
    ],
)
def test_data_type_settings_explain_what_they_refuse(field, value, message):
    form = settings_form(**{field: value})
    assert not form.is_valid()
    assert form.errors[field] == [message]


def test_valid_data_type_settings_are_saved():
    form = settings_form(
        interval_minutes="1", max_drop_ratio="1", history_keep_syncs="1", history_keep_days="1"
    )
    assert form.is_valid(), form.errors


def test_the_admin_page_shows_the_explanation_next_to_the_field(root):
    config = ensure_configs()["vendors"]
    url = reverse("admin:finalesync_datatypeconfig_change", args=[config.pk])
    page = root.post(
        url,
        {
            "enabled": "on",
            "interval_minutes": "-1",
            "max_drop_ratio": "0",
            "max_change_ratio": "0.75",
            "max_emptied_ratio": "0.5",
            "history_keep_syncs": "0",
            "history_keep_days": "14",
        },
    ).content.decode()
    for message in ("the interval is at least 1 minute", "must be more than 0", "keep at least 1 sync"):
        assert message in page
    config.refresh_from_db()
    assert config.interval_minutes == 60


def test_needs_attention_is_a_warning_not_a_green_tick(root):
    ensure_configs()
    DataTypeConfig.objects.filter(data_type="boms").update(
        needs_attention=True, attention_reason="Finale rejected the API key (HTTP 401)"
    )
    page = root.get(reverse("admin:finalesync_datatypeconfig_changelist")).content.decode()
    row = next(r for r in re.findall(r"<tr>.*?</tr>", page, re.S) if ">boms<" in r)
    attention = re.search(r'<td class="field-attention">(.*?)</td>', row, re.S).group(1)
    assert "icon-alert.svg" in attention and "icon-yes.svg" not in attention
    assert "Finale rejected the API key (HTTP 401)" in attention
    quiet = next(r for r in re.findall(r"<tr>.*?</tr>", page, re.S) if ">vendors<" in r)
    assert re.search(r'<td class="field-attention">no</td>', quiet)


# --- the mirrored tables -------------------------------------------------------------------------------------
def test_quantities_read_without_padding(root):
    now = timezone.now()
    item = InventoryItem.objects.create(
        natural_key="SKU-1",
        sku="SKU-1",
        name="Widget",
        on_hand=Decimal("12.0000"),
        on_order=Decimal("1200"),
        unit_cost=Decimal("3.5000"),
        created_at=now,
        updated_at=now,
    )
    listing = root.get(reverse("admin:finalesync_inventoryitem_changelist")).content.decode()
    assert ">12<" in listing and ">1200<" in listing and ".0000" not in listing
    assert "1.2E+3" not in listing
    detail = root.get(reverse("admin:finalesync_inventoryitem_change", args=[item.pk])).content.decode()
    assert ">12<" in detail and ">3.5<" in detail and ".0000" not in detail and ".5000" not in detail


# --- labels and the product's name -------------------------------------------------------------------------
def test_model_names_are_spelled_right():
    assert RetryItem._meta.verbose_name_plural == "retries"
    for model in apps.get_models():
        if model._meta.app_label in OUR_APPS:
            plural = str(model._meta.verbose_name_plural)
            assert not re.search(r"[^aeiou]ys$", plural), plural  # "retrys"


def test_every_admin_label_of_ours_is_spelled_as_people_write_it(root):
    """The index, every list's column titles and filters, and every choice shown: 'Retries', 'CLI', 'BOM',
    never 'Retrys', 'Cli', 'Bom' or an identifier with underscores."""
    request = RequestFactory().get("/")
    request.user = make_user("labels", superuser=True)
    labels = []
    for model, model_admin in admin.site._registry.items():
        if model._meta.app_label not in OUR_APPS:
            continue
        labels.append(str(model._meta.verbose_name_plural))
        for name in model_admin.get_list_display(request):
            labels.append(admin.utils.label_for_field(name, model, model_admin))
        for field in model._meta.fields:
            labels.append(str(field.verbose_name))
            labels += [str(label) for _, label in field.choices or []]
    bad = sorted({label for label in labels if re.search(r"\b(Retrys|retrys|Cli|cli|Bom|Id)\b|_", label)})
    assert bad == []
    index = root.get("/admin/").content.decode()
    assert "Retries" in index and "Retrys" not in index


def test_failure_log_says_cli_as_the_sync_runs_do(root):
    FailureLog.objects.create(data_type="inventory", error_message="HTTP 503", trigger="cli")
    listing = root.get(reverse("admin:retries_failurelog_changelist")).content.decode()
    assert re.search(r'<td class="field-trigger_label">CLI</td>', listing)
    assert re.search(r'<a href="\?trigger=cli"[^>]*>CLI</a>', listing)  # the filter says it the same way
    filtered = root.get(reverse("admin:retries_failurelog_changelist"), {"trigger": "cli"}).content.decode()
    assert "1 failure log" in filtered


def test_the_admin_and_its_login_page_carry_the_product_name_and_icon(client):
    login = client.get("/admin/login/").content.decode()
    assert "<title>Log in | finalesync admin</title>" in login
    assert 'id="site-name"' in login and "finalesync</a>" in login
    assert re.search(r'<link rel="icon" href="/static/health/favicon\.svg"', login)
    assert "Django administration" not in login and "Django site admin" not in login
    client.force_login(make_user("root", superuser=True))
    index = client.get("/admin/").content.decode()
    assert "Finale Inventory sync: settings and history" in index
    assert re.search(r'<link rel="icon" href="/static/health/favicon\.svg"', index)


def test_the_dashboard_has_a_favicon(root):
    page = root.get("/").content.decode()
    assert re.search(r'<link rel="icon" href="/static/health/favicon\.svg" type="image/svg\+xml">', page)
    icon = root.get("/static/health/favicon.svg")
    assert icon.status_code == 200 and b"<svg" in b"".join(icon.streaming_content)
