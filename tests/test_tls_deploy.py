"""The production deploy, for real (issue 9): Debian's nginx terminates TLS with a self-signed certificate on
loopback in front of gunicorn, with the qcluster beside it, all three started from the files in deploy/
(rendered with this test's ports and paths) and the production settings (DEBUG off, an https SITE_URL).
Chromium logs in over https, presses "Sync now" and sees the result: no CSRF 403, secure cookies, HSTS, and
the queued sync is run by the cluster."""

from __future__ import annotations

import datetime
import ipaddress
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from finalesync.models import SyncRun
from finalesync.sync import ensure_configs

from .conftest import ROOT, database_url, finale_env, manage
from .opsdata import PASSWORD, make_user
from .test_browser import CHROMIUM, CHROMIUM_ARGS

DEPLOY = ROOT / "deploy"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM),
        reason=f"no system chromium at {CHROMIUM} (apt-get install chromium; .ci/run installs it)",
    ),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (pip) is not installed")


def find_nginx() -> str | None:
    """Debian's nginx; installed with apt-get when missing and this runs as root (as CI does)."""
    for _ in range(2):
        found = shutil.which("nginx") or next(
            (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
        )
        if found or os.geteuid() != 0 or not shutil.which("apt-get"):
            return found
        subprocess.run(
            "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx",
            shell=True,
            capture_output=True,
            timeout=900,
        )
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "fullchain.pem", directory / "privkey.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def render(text: str, replacements: dict[str, str]) -> str:
    """The deploy file with the example values replaced; each must be there, or the file and this test
    have drifted apart."""
    for example, value in replacements.items():
        assert example in text, f"{example!r} is no longer in the deploy file"
        text = text.replace(example, value)
    return text


def unit_command(unit: str, replacements: dict[str, str]) -> tuple[list[str], Path]:
    """ExecStart and WorkingDirectory of a systemd unit from deploy/, rendered."""
    text = render((DEPLOY / unit).read_text(), replacements)
    exec_start = re.search(r"^ExecStart=(.+)$", text, re.M).group(1)
    workdir = re.search(r"^WorkingDirectory=(.+)$", text, re.M).group(1)
    return shlex.split(exec_start), Path(workdir)


def wait_until(check, *, timeout: float, what: str, procs=()):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name, proc, log in procs:
            assert proc.poll() is None, f"{name} exited:\n{log.read_text()[-3000:]}"
        try:
            if check():
                return
        except (requests.RequestException, OSError):
            pass
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def nginx():
    found = find_nginx()
    if not found:
        pytest.skip(
            "nginx is not installed and cannot be installed here (apt-get install nginx; .ci/run does)"
        )
    return found


@pytest.fixture
def browser(monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()
            from django.db import connections

            connections.close_all()


@pytest.mark.django_db(transaction=True)
def test_login_and_sync_now_over_tls_behind_nginx(nginx, browser, finale, tmp_path):
    web_port, https_port, http_port = free_port(), free_port(), free_port()
    site = f"https://127.0.0.1:{https_port}"
    cert, key = self_signed(tmp_path)
    static = tmp_path / "static"
    venv_bin = str(Path(sys.executable).parent) + "/"

    # The production environment (deploy/finalesync.env.example's variables), pointed at the simulator.
    env = {k: v for k, v in finale_env(finale).items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update(
        DEBUG="false",
        SITE_URL=site,
        ALLOWED_HOSTS="127.0.0.1",
        DATABASE_URL=database_url(),
        STATIC_ROOT=str(static),
        Q_CLUSTER_NAME=f"tls-{os.getpid()}",
    )
    env.pop("REDIS_URL", None)
    assert env["SECRET_KEY"] and env["FINALESYNC_ENCRYPTION_KEY"]  # tests/settings.py put them there
    collected = manage("collectstatic", "--noinput", env=env, timeout=180)
    assert collected.returncode == 0, collected.stderr

    paths = {"/srv/finalesync/.venv/bin/": venv_bin, "/srv/finalesync": str(ROOT)}
    web_cmd, web_dir = unit_command(
        "finalesync-web.service",
        {**paths, "127.0.0.1:8000": f"127.0.0.1:{web_port}", "--workers 3": "--workers 2"},
    )
    cluster_cmd, cluster_dir = unit_command("finalesync-qcluster.service", paths)
    site_conf = render(
        (DEPLOY / "nginx-finalesync.conf").read_text(),
        {
            "server 127.0.0.1:8000;": f"server 127.0.0.1:{web_port};",
            "listen 80;": f"listen 127.0.0.1:{http_port};",
            "listen [::]:80;\n": "",
            "listen 443 ssl;": f"listen 127.0.0.1:{https_port} ssl;",
            "listen [::]:443 ssl;\n": "",
            "/etc/ssl/finalesync/fullchain.pem": str(cert),
            "/etc/ssl/finalesync/privkey.pem": str(key),
            "/srv/finalesync/var/static/": f"{static}/",
        },
    )
    (tmp_path / "site.conf").write_text(site_conf)
    # The main nginx.conf a Debian host has, reduced to what runs unprivileged in a temporary folder.
    (tmp_path / "nginx.conf").write_text(
        f"""
        {"user root;" if os.geteuid() == 0 else ""}
        daemon off;
        worker_processes 1;
        pid {tmp_path}/nginx.pid;
        error_log {tmp_path}/nginx-error.log;
        events {{ worker_connections 64; }}
        http {{
            include /etc/nginx/mime.types;
            access_log {tmp_path}/nginx-access.log;
            client_body_temp_path {tmp_path}/body;
            proxy_temp_path {tmp_path}/proxy;
            fastcgi_temp_path {tmp_path}/fastcgi;
            uwsgi_temp_path {tmp_path}/uwsgi;
            scgi_temp_path {tmp_path}/scgi;
            include {tmp_path}/site.conf;
        }}
        """
    )
    nginx_cmd = [
        nginx,
        "-p",
        str(tmp_path),
        "-e",
        str(tmp_path / "nginx-error.log"),
        "-c",
        str(tmp_path / "nginx.conf"),
    ]
    tested = subprocess.run([*nginx_cmd, "-t"], capture_output=True, text=True)
    assert tested.returncode == 0, tested.stderr

    make_user("ops", superuser=True)
    ensure_configs()
    procs = []
    try:
        for name, cmd, cwd in (
            ("gunicorn", web_cmd, web_dir),
            ("qcluster", cluster_cmd, cluster_dir),
            ("nginx", nginx_cmd, tmp_path),
        ):
            log = tmp_path / f"{name}.log"
            proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
            procs.append((name, proc, log))

        wait_until(
            lambda: requests.get(f"{site}/health/", verify=str(cert), timeout=5).status_code in (200, 503),
            timeout=60,
            what="the dashboard through nginx",
            procs=procs,
        )
        # Real TLS: the certificate verifies for 127.0.0.1; plain http only redirects to https.
        plain = requests.get(f"http://127.0.0.1:{http_port}/", allow_redirects=False, timeout=5)
        assert plain.status_code == 301 and plain.headers["Location"].startswith("https://")
        static_css = requests.get(f"{site}/static/health/dashboard.css", verify=str(cert), timeout=5)
        assert static_css.status_code == 200 and "max-age" in static_css.headers.get("Cache-Control", "")

        context = browser.new_context(ignore_https_errors=True)  # self-signed: no CA chromium knows
        page = context.new_page()
        statuses = []
        page.on("response", lambda response: statuses.append((response.status, response.url)))
        first = page.goto(site + "/")
        assert "/admin/login/" in page.url
        assert "max-age=" in (first.headers.get("strict-transport-security") or "")
        page.fill("#id_username", "ops")
        page.fill("#id_password", PASSWORD)
        page.click("input[type=submit]")
        page.wait_for_url(site + "/")
        cookies = {c["name"]: c for c in context.cookies()}
        assert cookies["sessionid"]["secure"] and cookies["csrftoken"]["secure"]

        card = page.locator('article.card[data-type="inventory"]')
        card.get_by_role("button", name="Sync now", exact=True).click()
        sync_api.expect(page.locator(".msg-success")).to_contain_text(
            "Sync of inventory queued", timeout=15_000
        )
        assert not [s for s in statuses if s[0] == 403], statuses

        wait_until(
            lambda: SyncRun.objects.filter(
                data_type="inventory", trigger="manual", outcome="success"
            ).exists(),
            timeout=90,
            what="the cluster to run the queued sync",
            procs=procs,
        )
        assert SyncRun.objects.get(data_type="inventory", trigger="manual").triggered_by == "ops"
        context.close()
    finally:
        for _, proc, _ in reversed(procs):
            proc.terminate()
        for _, proc, _ in reversed(procs):
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
