"""Settings for finalesync: everything comes from the environment (or a `.env` file beside manage.py).

Out of the box it runs on an SQLite file under `var/`; set DATABASE_URL for PostgreSQL.
"""

import os
import warnings
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import environ
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"
VAR_DIR.mkdir(exist_ok=True)

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env")

# Off unless set: DEBUG=true is development (`make demo` sets it), with the fallbacks below.
DEBUG = env.bool("DEBUG", default=False)
# Public, so accepted only with DEBUG on; production sets its own (the check below refuses it otherwise).
DEVELOPMENT_SECRET_KEY = "insecure-dev-only-change-me-finalesync"
SECRET_KEY = env.str("SECRET_KEY", default=DEVELOPMENT_SECRET_KEY)
# Earlier SECRET_KEYs, still accepted for sessions and signatures while they age out (Django's rotation).
SECRET_KEY_FALLBACKS = env.list("SECRET_KEY_FALLBACKS", default=[])
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
# The dashboard's public URL: alert links point at it, and an https:// URL switches on the HTTPS settings below.
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000")
# Bearer token for machine readers of /metrics and /analytics.json (empty: staff sessions only).
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")

# --- Secrets at rest ------------------------------------------------------------------------------------------
# One Fernet key, or several separated by commas: the first encrypts, all decrypt (rotation: see README).
FINALESYNC_ENCRYPTION_KEY = env.str("FINALESYNC_ENCRYPTION_KEY", default="")
GENERATE_SECRET_KEY = 'python -c "import secrets; print(secrets.token_urlsafe(50))"'
GENERATE_ENCRYPTION_KEY = (
    'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'
)


def _development_encryption_key(path: Path) -> str:
    """A key of this checkout only (DEBUG on, none configured): made once, kept under var/, never shared."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as f:
        key = Fernet.generate_key().decode()
        f.write(key + "\n")
    return key


def _refusals() -> list[str]:
    """Why this process must not start with DEBUG off: empty when the secrets are its own."""
    problems = []
    if not SECRET_KEY or SECRET_KEY == DEVELOPMENT_SECRET_KEY:
        problems.append(
            "SECRET_KEY is not set (the development default is public). Make one with\n"
            f"      {GENERATE_SECRET_KEY}"
        )
    if not FINALESYNC_ENCRYPTION_KEY:
        problems.append(
            "FINALESYNC_ENCRYPTION_KEY is not set: stored credentials are encrypted with it. Make one with\n"
            f"      {GENERATE_ENCRYPTION_KEY}\n"
            "    Upgrading from a version without it? Keep SECRET_KEY as it was, set the new key, and run\n"
            "    `manage.py migrate`: it re-encrypts what is stored under the new key (README: Upgrading)."
        )
    return problems


if not DEBUG and _refusals():
    raise ImproperlyConfigured(
        "finalesync will not start with DEBUG off and:\n  - "
        + "\n  - ".join(_refusals())
        + "\nSet them in the environment or in .env beside manage.py (README: Configuration). "
        "DEBUG=true is for development only."
    )
if not FINALESYNC_ENCRYPTION_KEY:
    FINALESYNC_ENCRYPTION_KEY = _development_encryption_key(VAR_DIR / "development-encryption.key")
for _position, _key in enumerate(k.strip() for k in FINALESYNC_ENCRYPTION_KEY.split(",") if k.strip()):
    try:
        Fernet(_key.encode())
    except ValueError:
        # Never echo the value: it may be a real key with a typo.
        raise ImproperlyConfigured(
            f"FINALESYNC_ENCRYPTION_KEY: entry {_position + 1} is not a Fernet key (32 url-safe base64 bytes). "
            f"Make one with {GENERATE_ENCRYPTION_KEY}"
        ) from None

# --- HTTPS: one switch, an https:// SITE_URL ------------------------------------------------------------------
# Behind a TLS proxy (deploy/nginx-finalesync.conf) that passes Host and sets X-Forwarded-Proto itself; the app
# must be reachable only through that proxy, or a client could claim https with the header.
_site = urlsplit(SITE_URL)
SITE_IS_HTTPS = _site.scheme == "https"
CSRF_TRUSTED_ORIGINS = [f"https://{_site.netloc}"] if SITE_IS_HTTPS else []
if SITE_IS_HTTPS:
    if _site.hostname and _site.hostname not in ALLOWED_HOSTS:
        ALLOWED_HOSTS.append(_site.hostname)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=365 * 24 * 3600)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)

# Bearer token for /metrics; without one, anonymous scrapes get the status gauges only (README: Reading health).
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_q",
    # Bottom layer first: the engine, then the retry queue, then health. Receivers of the engine's
    # run_finished signal run in this order (the queue has handled a run before health alerts on it).
    "finalesync",
    "retries",
    "health",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "finalesync.urls"
WSGI_APPLICATION = "finalesync.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

with warnings.catch_warnings():
    # django-environ warns before we can say it better (below).
    warnings.simplefilter("ignore")
    DATABASES = {
        "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'finalesync.sqlite3'}"),
    }
if not DATABASES["default"].get("ENGINE"):
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(
        "DATABASE_URL is not a database URL this app understands; use postgres://user@host:5432/name or "
        "sqlite:///path/to/file.sqlite3"
    )
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the dashboard read while a sync writes; the timeout makes a second writer wait, not fail.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
DATABASES["default"].setdefault("TEST", {})
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not memory: tests start real subprocesses (runsync, qcluster) that must see the same data.
    # One file per test run, so two runs on one machine never share (or delete) each other's database.
    DATABASES["default"]["TEST"]["NAME"] = str(VAR_DIR / f"test-{os.getpid()}.sqlite3")
if env.str("TEST_DATABASE_NAME", default=""):
    DATABASES["default"]["TEST"]["NAME"] = env.str("TEST_DATABASE_NAME")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "/admin/login/"

LANGUAGE_CODE = "en-us"
# An IANA zone name (Europe/Berlin). Times are stored in UTC and shown in this zone, always with its name.
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
try:
    ZoneInfo(TIME_ZONE)
except (ValueError, ZoneInfoNotFoundError):
    raise ImproperlyConfigured(
        f"TIME_ZONE={TIME_ZONE!r} is not a time zone name; use one like UTC, Europe/Berlin or America/Chicago"
    ) from None
USE_I18N = True
USE_TZ = True
# Dates and times Django itself shows (the admin) in the same form as finalesync's own texts, with the zone.
FORMAT_MODULE_PATH = ["finalesync.formats"]

STATIC_URL = "static/"
# Where `collectstatic` copies CSS and JS for the front proxy to serve (deploy/nginx-finalesync.conf).
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "static")))

# --- Finale -------------------------------------------------------------------------------------------------
FINALE_BASE_URL = env.str("FINALE_BASE_URL", default="https://app.finaleinventory.com")
FINALE_ACCOUNT = env.str("FINALE_ACCOUNT", default="")
FINALE_API_KEY = env.str("FINALE_API_KEY", default="")
FINALE_API_SECRET = env.str("FINALE_API_SECRET", default="")
# FINALE_REPORT_URL_<TYPE> for every report type (inventory, vendors, boms, and any type added later).
FINALE_REPORT_URLS = {
    name.removeprefix("FINALE_REPORT_URL_").lower(): value
    for name, value in os.environ.items()
    if name.startswith("FINALE_REPORT_URL_") and value
}
FINALE_CONNECT_TIMEOUT = env.float("FINALE_CONNECT_TIMEOUT", default=10.0)
FINALE_READ_TIMEOUT = env.float("FINALE_READ_TIMEOUT", default=120.0)
# A report bigger than this (after gzip is undone) is refused with a clear error rather than filling the disk
# or the database. Reports are streamed, so this bounds time and disk, not memory.
FINALE_MAX_RESPONSE_BYTES = env.int("FINALE_MAX_RESPONSE_BYTES", default=2 * 1024**3)
# Memory is bounded by these instead: no physical line of a report may be longer (a 1 GiB single line is
# refused after ~1 MiB), and the parser refuses a header with more columns than this.
FINALE_MAX_LINE_BYTES = env.int("FINALE_MAX_LINE_BYTES", default=1024**2)
FINALE_MAX_COLUMNS = env.int("FINALE_MAX_COLUMNS", default=500)
# The order collection is one JSON document that json.loads must hold whole: its own, smaller cap. Measured
# with tests/scripts/orders_json_peak.py (simulator orders, ~1 KB each): decoding a 32 MiB collection
# (~33,000 orders) peaks at ~150 MiB RSS in a bare interpreter, a 64 MiB one at ~290 MiB, which with
# Django and the sync's own memory would pass 300 MB. Larger accounts sync by lastUpdatedDate windows.
FINALE_MAX_ORDERS_BYTES = env.int("FINALE_MAX_ORDERS_BYTES", default=32 * 1024**2)
# The whole download, headers to last byte, redirects included. The read timeout only bounds the gap between
# two reads, which a drip-feed never exceeds. Must stay below SYNC_LOCK_TTL_SECONDS and django-q2's task
# timeout (a system check says so).
FINALE_TOTAL_TIMEOUT = env.float("FINALE_TOTAL_TIMEOUT", default=900.0)
FINALE_VERIFY_TLS = env.bool("FINALE_VERIFY_TLS", default=True)

# --- Sync engine ---------------------------------------------------------------------------------------------
# More than this share of unparseable rows makes the whole response malformed data.
SYNC_MAX_BAD_ROW_RATIO = env.float("SYNC_MAX_BAD_ROW_RATIO", default=0.05)
# A body whose end cannot be verified (no Content-Length, no chunking: it ends when the connection closes)
# may not delete more than this share of a type's rows without a person's confirmation.
SYNC_UNVERIFIED_MAX_DROP_RATIO = env.float("SYNC_UNVERIFIED_MAX_DROP_RATIO", default=0.01)
# A lease-based type lock (SQLite) expires after this long, so a killed worker cannot block a type forever.
SYNC_LOCK_TTL_SECONDS = env.int("SYNC_LOCK_TTL_SECONDS", default=30 * 60)
# A sync passes over report lines that have not changed since the last one (finalesync/unchanged.py); at least
# this often it reads every line and compares every row instead, which also repairs rows edited by hand.
# 0 compares every row in every sync.
SYNC_FULL_COMPARE_HOURS = env.float("SYNC_FULL_COMPARE_HOURS", default=24.0)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # urllib3 logs request paths at DEBUG; a webhook's path is its secret.
        "urllib3": {"level": "WARNING"},
    },
}

# --- django-q2 ----------------------------------------------------------------------------------------------
Q_CLUSTER = {
    "name": env.str("Q_CLUSTER_NAME", default="finalesync"),
    "workers": env.int("Q_WORKERS", default=2),
    "timeout": env.int("Q_TIMEOUT", default=25 * 60),
    # retry (redelivery) must exceed timeout, so a long sync is never handed out twice while it still runs.
    "retry": env.int("Q_RETRY", default=30 * 60),
    "max_attempts": 1,
    "orm": "default",
    "catch_up": False,
    "save_limit": 1000,
    "ack_failures": True,
}
if env.str("REDIS_URL", default=""):
    Q_CLUSTER.pop("orm")
    Q_CLUSTER["redis"] = env.str("REDIS_URL")

# --- Retry queue ----------------------------------------------------------------------------------------------
RETRY_BASE_SECONDS = env.float("RETRY_BASE_SECONDS", default=5 * 60)
RETRY_MAX_DELAY_SECONDS = env.float("RETRY_MAX_DELAY_SECONDS", default=2 * 3600)
RETRY_JITTER = env.float("RETRY_JITTER", default=0.10)
RETRY_MAX_RETRIES = env.int("RETRY_MAX_RETRIES", default=3)
RETRY_BATCH_SIZE = env.int("RETRY_BATCH_SIZE", default=10)
# Longer than the longest sync: a live worker never loses its item; a dead one's item comes back after this.
RETRY_LEASE_SECONDS = env.int("RETRY_LEASE_SECONDS", default=30 * 60)

# --- Cleanup (days to keep) -----------------------------------------------------------------------------------
CLEANUP_RETRY_DAYS = env.int("CLEANUP_RETRY_DAYS", default=7)
CLEANUP_FAILED_RETRY_DAYS = env.int("CLEANUP_FAILED_RETRY_DAYS", default=30)
CLEANUP_FAILURE_LOG_DAYS = env.int("CLEANUP_FAILURE_LOG_DAYS", default=90)
CLEANUP_SYNC_RUN_DAYS = env.int("CLEANUP_SYNC_RUN_DAYS", default=90)

# --- Alerts ---------------------------------------------------------------------------------------------------
# EMAIL_URL like smtp://user:pass@host:587/?tls=True ; the default prints mail to the console.
vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="finalesync <finalesync@localhost>")
ALERT_EMAIL_TO = env.str("ALERT_EMAIL_TO", default="")
ALERT_SLACK_WEBHOOK_URL = env.str("ALERT_SLACK_WEBHOOK_URL", default="")
ALERT_WEBHOOK_URL = env.str("ALERT_WEBHOOK_URL", default="")
ALERT_WEBHOOK_SECRET = env.str("ALERT_WEBHOOK_SECRET", default="")
ALERT_REMINDER_HOURS = env.float("ALERT_REMINDER_HOURS", default=6)
ALERT_DELIVERY_ATTEMPTS = env.int("ALERT_DELIVERY_ATTEMPTS", default=3)
ALERT_RETRY_BASE_SECONDS = env.float("ALERT_RETRY_BASE_SECONDS", default=60)
ALERT_HTTP_TIMEOUT = env.float("ALERT_HTTP_TIMEOUT", default=10)
