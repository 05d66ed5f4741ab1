"""Starting up (issue 9): with DEBUG off the app refuses the development SECRET_KEY and a missing encryption
key; the documented production environment passes `check --deploy`; an https SITE_URL is the one switch for
the HTTPS settings. Each case is a real `manage.py` in a subprocess, as an operator would start it."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from .conftest import ROOT, manage

pytestmark = pytest.mark.slow
OURS = (
    "DEBUG",
    "SECRET_KEY",
    "SECRET_KEY_FALLBACKS",
    "FINALESYNC_ENCRYPTION_KEY",
    "SITE_URL",
    "ALLOWED_HOSTS",
)
DEVELOPMENT_SECRET_KEY = "insecure-dev-only-change-me-finalesync"


def environment(**values) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in OURS and not k.startswith(("SECURE_", "METRICS"))}
    env["DJANGO_SETTINGS_MODULE"] = "finalesync.settings"
    env.update(values)
    return env


def production(**overrides) -> dict:
    values = {
        "DEBUG": "False",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "FINALESYNC_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "ALLOWED_HOSTS": "finalesync.example.com",
        "SITE_URL": "https://finalesync.example.com",
    }
    values.update(overrides)
    return environment(**{k: v for k, v in values.items() if v is not None})


def test_debug_off_refuses_the_development_secret_key():
    for value in (None, DEVELOPMENT_SECRET_KEY):
        result = manage("check", env=production(SECRET_KEY=value))
        assert result.returncode != 0
        assert "SECRET_KEY" in result.stderr and "secrets.token_urlsafe" in result.stderr


def test_debug_off_refuses_to_start_without_the_encryption_key():
    result = manage("check", env=production(FINALESYNC_ENCRYPTION_KEY=None))
    assert result.returncode != 0
    assert "FINALESYNC_ENCRYPTION_KEY" in result.stderr and "Fernet.generate_key()" in result.stderr


def test_a_malformed_encryption_key_is_refused_by_name():
    result = manage("check", env=production(FINALESYNC_ENCRYPTION_KEY="not-a-fernet-key"))
    assert result.returncode != 0
    assert "FINALESYNC_ENCRYPTION_KEY" in result.stderr and "not-a-fernet-key" not in result.stderr


def env_file(path: Path) -> dict:
    """KEY=value lines as systemd's EnvironmentFile reads them (comments and blank lines skipped)."""
    lines = [line.strip() for line in path.read_text().splitlines()]
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def test_the_documented_production_environment_passes_check_deploy():
    documented = env_file(ROOT / "deploy" / "finalesync.env.example")
    assert documented["DEBUG"] == "false" and documented["SITE_URL"].startswith("https://")
    documented.update(
        SECRET_KEY=secrets.token_urlsafe(50), FINALESYNC_ENCRYPTION_KEY=Fernet.generate_key().decode()
    )
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=environment(**documented))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_development_mode_starts_without_any_key():
    result = manage("check", env=environment(DEBUG="True"))
    assert result.returncode == 0, result.stderr


SHOW = (
    "import json; from django.conf import settings as s; print(json.dumps({n: getattr(s, n, None) for n in "
    "['CSRF_TRUSTED_ORIGINS', 'SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE', 'SECURE_SSL_REDIRECT', "
    "'SECURE_HSTS_SECONDS', 'SECURE_PROXY_SSL_HEADER', 'ALLOWED_HOSTS']}))"
)


def shown(env) -> dict:
    result = manage("shell", "-c", SHOW, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_an_https_site_url_switches_on_the_https_settings():
    values = shown(production(SITE_URL="https://sync.example.com:8443/"))
    assert values["CSRF_TRUSTED_ORIGINS"] == ["https://sync.example.com:8443"]
    assert values["SESSION_COOKIE_SECURE"] and values["CSRF_COOKIE_SECURE"] and values["SECURE_SSL_REDIRECT"]
    assert values["SECURE_HSTS_SECONDS"] >= 31536000
    assert values["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert "sync.example.com" in values["ALLOWED_HOSTS"]


def test_a_plain_http_site_url_leaves_them_off():
    values = shown(environment(DEBUG="True", SITE_URL="http://127.0.0.1:8000"))
    assert not values["SESSION_COOKIE_SECURE"] and not values["SECURE_SSL_REDIRECT"]
    assert values["SECURE_PROXY_SSL_HEADER"] is None and values["CSRF_TRUSTED_ORIGINS"] == []
