"""The Finale connection in the admin (issue 9): the host is not a field, a changed account needs the key and
secret again, the API key is stored encrypted and never rendered, a view-only user sees the page."""

from __future__ import annotations

import http.server
import threading

import pytest
from django.db import connection
from django.urls import reverse

from finalesync.models import AuditLog, DataTypeConfig, FinaleConnection
from finalesync.sync import sync_data_type

from .opsdata import make_user

pytestmark = pytest.mark.django_db
URL = reverse("admin:finalesync_finaleconnection_change", args=[1])
API_KEY = "key-Pq42-do-not-leak"


class Catcher:
    """An attacker's server on loopback: records every request (and its Authorization header)."""

    def __init__(self):
        self.requests: list[tuple[str, str | None]] = []
        catcher = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                catcher.requests.append((self.path, self.headers.get("Authorization")))
                self.send_response(200)
                self.send_header("Content-Type", "text/csv")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def catcher():
    c = Catcher()
    yield c
    c.close()


@pytest.fixture
def stored(finale, settings):
    """The connection as an operator stored it in the admin (only the host comes from the environment)."""
    settings.FINALE_ACCOUNT = settings.FINALE_API_KEY = settings.FINALE_API_SECRET = ""
    FinaleConnection.objects.create(
        pk=1, account=finale.account, api_key=finale.api_key, api_secret=finale.api_secret
    )
    return finale


def raw(column: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM finalesync_finaleconnection WHERE id = 1")
        return cursor.fetchone()[0]


def test_a_staff_user_who_may_change_the_connection_cannot_send_the_credentials_elsewhere(
    client, stored, catcher
):
    stored.set_fault("purchase_orders", "http_401")
    sync_data_type(data_type="purchase_orders", force=True)
    assert DataTypeConfig.objects.get(data_type="purchase_orders").needs_attention
    stored.clear_faults()

    client.force_login(make_user("mallory", perms=["finalesync.change_finaleconnection"]))
    response = client.post(
        URL, {"base_url": catcher.url, "account": stored.account, "api_key": stored.api_key}
    )
    assert response.status_code in (200, 302)

    # Nothing credential-like changed, so nobody was spared pressing a button either.
    assert DataTypeConfig.objects.get(data_type="purchase_orders").needs_attention
    assert sync_data_type(data_type="purchase_orders", force=True).outcome == "success"
    assert catcher.requests == []
    assert catcher.url not in client.get(URL).content.decode()


def test_changing_the_account_needs_the_key_and_secret_again(client, stored):
    client.force_login(make_user("ops", perms=["finalesync.change_finaleconnection"]))
    response = client.post(URL, {"account": "someone-else"})
    assert response.status_code == 200  # the form again, with the reason
    assert "enter the API key and secret" in response.content.decode()
    assert FinaleConnection.objects.get().account == stored.account
    assert not AuditLog.objects.filter(action="change_credentials").exists()

    response = client.post(
        URL, {"account": "someone-else", "new_api_key": "other-key-1", "new_api_secret": "other-secret-1"}
    )
    assert response.status_code == 302
    saved = FinaleConnection.objects.get()
    assert (saved.account, saved.api_key, saved.api_secret) == (
        "someone-else",
        "other-key-1",
        "other-secret-1",
    )


def test_reentering_the_same_secret_does_not_lift_needs_a_person(client, stored):
    stored.set_fault("vendors", "http_401")
    sync_data_type(data_type="vendors", force=True)
    client.force_login(make_user("root", superuser=True))
    client.post(URL, {"account": stored.account, "new_api_secret": stored.api_secret})
    assert DataTypeConfig.objects.get(data_type="vendors").needs_attention
    client.post(URL, {"account": stored.account, "new_api_secret": "a-really-new-secret"})
    assert not DataTypeConfig.objects.get(data_type="vendors").needs_attention


def test_the_api_key_is_stored_encrypted_and_never_rendered(client, stored):
    client.force_login(make_user("root", superuser=True))
    response = client.post(URL, {"account": stored.account, "new_api_key": API_KEY}, follow=True)
    assert response.status_code == 200
    assert FinaleConnection.objects.get().api_key == API_KEY
    assert API_KEY not in raw("api_key") and raw("api_key")
    page = client.get(URL).content.decode()
    assert API_KEY not in page and stored.api_key not in page
    assert ">set<" in page.replace("\n", "")
    assert API_KEY not in AuditLog.objects.get(action="change_credentials").message


def test_the_page_shows_the_finale_host_from_the_environment_read_only(client, stored, settings):
    client.force_login(make_user("root", superuser=True))
    page = client.get(URL).content.decode()
    assert settings.FINALE_BASE_URL in page and "FINALE_BASE_URL" in page
    assert 'name="base_url"' not in page


def test_a_view_only_user_gets_the_page_when_the_account_comes_from_the_environment(client, settings):
    settings.FINALE_ACCOUNT = "acme-from-env"
    FinaleConnection.objects.create(pk=1, account="acme", api_key=API_KEY, api_secret="s3cret-value")
    client.force_login(make_user("viewer", perms=["finalesync.view_finaleconnection"]))
    response = client.get(URL)
    assert response.status_code == 200
    page = response.content.decode()
    assert "FINALE_ACCOUNT" in page and API_KEY not in page and "s3cret-value" not in page
