"""`/metrics` (issue 9): with METRICS_TOKEN set it needs the bearer token or a staff session; anonymous callers
never see more than `/health/` shows them (statuses), with or without a token configured."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from .opsdata import health_rows, make_user

pytestmark = pytest.mark.django_db
TOKEN = "metrics-token-Vb58-long-enough"
FIGURES = ("finalesync_data_type_items", "finalesync_retry_queue_items", "finalesync_failures_24h")


def names(response) -> set[str]:
    assert response.status_code == 200
    return {f.name for f in text_string_to_metric_families(response.content.decode())}


def test_with_a_token_an_anonymous_scrape_is_refused(client, settings):
    settings.METRICS_TOKEN = TOKEN
    health_rows()
    response = client.get("/metrics")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert b"finalesync_" not in response.content
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong-token").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION=TOKEN).status_code == 401  # the scheme is required


def test_with_a_token_the_bearer_gets_every_metric(client, settings):
    settings.METRICS_TOKEN = TOKEN
    health_rows()
    got = names(client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}"))
    assert set(FIGURES) <= got and "finalesync_data_type_status" in got


def test_with_a_token_a_staff_session_gets_every_metric_and_a_non_staff_one_does_not(client, settings):
    settings.METRICS_TOKEN = TOKEN
    health_rows()
    client.force_login(make_user("customer", staff=False))
    assert client.get("/metrics").status_code == 401
    client.force_login(make_user("ops"))
    assert set(FIGURES) <= names(client.get("/metrics"))


def test_without_a_token_anonymous_callers_get_the_status_gauges_only(client, settings):
    settings.METRICS_TOKEN = ""
    health_rows()
    got = names(client.get("/metrics"))
    assert {"finalesync_status", "finalesync_data_type_status"} <= got
    assert not set(FIGURES) & got
    body = client.get("/metrics").content.decode()
    assert "1009" not in body  # inventory's item count
    client.force_login(make_user("ops"))
    assert set(FIGURES) <= names(client.get("/metrics"))


def test_anonymous_health_stays_statuses_only(client, settings):
    settings.METRICS_TOKEN = TOKEN
    health_rows()
    data = client.get("/health/").json()
    for row in data["data_types"]:
        assert "item_count" not in row and "error_message" not in row
