"""`GET /metrics`: Prometheus text that Prometheus' own parser reads, with the documented families."""

import pytest
from django.test import override_settings
from prometheus_client.parser import text_string_to_metric_families

from finalesync.sync import sync_data_type
from retries.queue import enqueue_retry

from .opsdata import bulk, health_rows

pytestmark = pytest.mark.django_db


def scrape(client) -> dict:
    # As Prometheus scrapes: with the bearer token (anonymous callers get the status gauges only).
    with override_settings(METRICS_TOKEN="scrape-token-for-tests"):
        response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-token-for-tests")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(response.content.decode())}
    return families


def value(family, **labels):
    matches = [s.value for s in family.samples if all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(matches) == 1, (labels, family.samples)
    return matches[0]


def test_metrics_parse_and_carry_per_type_health(client):
    health_rows()
    families = scrape(client)
    status = families["finalesync_data_type_status"]
    assert value(status, data_type="boms", status="unhealthy") == 1
    assert value(status, data_type="boms", status="healthy") == 0
    assert value(families["finalesync_data_type_grade"], data_type="inventory", grade="excellent") == 1
    assert value(families["finalesync_data_type_consecutive_failures"], data_type="vendors") == 1
    assert value(families["finalesync_data_type_items"], data_type="inventory") == 1009
    since = value(families["finalesync_data_type_seconds_since_last_success"], data_type="inventory")
    assert 170 <= since <= 200
    assert value(families["finalesync_status"], status="unhealthy") == 1


def test_metrics_carry_queue_depth_durations_and_rollbacks(client, finale):
    assert sync_data_type(data_type="vendors", force=True).outcome == "success"
    finale.set_fault("vendors", "empty")
    assert sync_data_type(data_type="vendors").outcome == "rolled_back"
    enqueue_retry(data_type="boms", error="HTTP 503")
    families = scrape(client)
    depth = families["finalesync_retry_queue_items"]
    assert value(depth, status="pending") == 1 and value(depth, status="failed") == 0
    assert value(families["finalesync_rollbacks"], data_type="vendors") == 1
    assert families["finalesync_rollbacks"].type == "counter"
    histogram = families["finalesync_sync_duration_seconds"]
    assert histogram.type == "histogram"
    count = [s for s in histogram.samples if s.name.endswith("_count") and s.labels["data_type"] == "vendors"]
    assert count[0].value == 2
    inf = [
        s for s in histogram.samples if s.labels.get("le") == "+Inf" and s.labels["data_type"] == "vendors"
    ]
    assert inf[0].value == 2


def test_metrics_are_anonymous_and_hold_no_error_text(client):
    health_rows()
    bulk(failures=5, retries=5, runs=20)
    body = client.get("/metrics").content.decode()
    assert "HTTP 401" not in body and "bad key" not in body
