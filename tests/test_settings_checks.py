"""The system checks catch timeout settings that would run one task twice."""

from finalesync.checks import check_timeouts


def test_default_settings_pass():
    assert check_timeouts(None) == []


def test_task_timeout_longer_than_redelivery_is_an_error(settings):
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "timeout": 3600, "retry": 1800}
    assert [p.id for p in check_timeouts(None)] == ["finalesync.E001", "finalesync.W001"]
