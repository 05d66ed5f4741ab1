"""Settings for finalesync: everything comes from the environment (or a `.env` file beside manage.py).

Out of the box it runs on an SQLite file under `var/`; set DATABASE_URL for PostgreSQL.
"""

import os
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"
VAR_DIR.mkdir(exist_ok=True)

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env")

DEBUG = env.bool("DEBUG", default=False)
# A development fallback only: production sets SECRET_KEY (it also derives the encryption key).
SECRET_KEY = env.str("SECRET_KEY", default="insecure-dev-only-change-me-finalesync")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000")
# Bearer token for machine readers of /metrics and /analytics.json (empty: staff sessions only).
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
    "finalesync",
    "health",
    "retries",
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

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'finalesync.sqlite3'}"),
}
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
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"

# --- Finale -------------------------------------------------------------------------------------------------
FINALE_BASE_URL = env.str("FINALE_BASE_URL", default="https://app.finaleinventory.com")
FINALE_ACCOUNT = env.str("FINALE_ACCOUNT", default="")
FINALE_API_KEY = env.str("FINALE_API_KEY", default="")
FINALE_API_SECRET = env.str("FINALE_API_SECRET", default="")
FINALE_REPORT_URLS = {
    "inventory": env.str("FINALE_REPORT_URL_INVENTORY", default=""),
    "vendors": env.str("FINALE_REPORT_URL_VENDORS", default=""),
    "boms": env.str("FINALE_REPORT_URL_BOMS", default=""),
}
FINALE_CONNECT_TIMEOUT = env.float("FINALE_CONNECT_TIMEOUT", default=10.0)
FINALE_READ_TIMEOUT = env.float("FINALE_READ_TIMEOUT", default=120.0)
# A report bigger than this is refused with a clear error rather than filling the disk or the database.
FINALE_MAX_RESPONSE_BYTES = env.int("FINALE_MAX_RESPONSE_BYTES", default=2 * 1024**3)
FINALE_VERIFY_TLS = env.bool("FINALE_VERIFY_TLS", default=True)

# Fernet key for secrets stored in the database; derived from SECRET_KEY when not set.
FINALESYNC_ENCRYPTION_KEY = env.str("FINALESYNC_ENCRYPTION_KEY", default="")

# --- Sync engine ---------------------------------------------------------------------------------------------
# More than this share of unparseable rows makes the whole response malformed data.
SYNC_MAX_BAD_ROW_RATIO = env.float("SYNC_MAX_BAD_ROW_RATIO", default=0.05)
# A lease-based type lock (SQLite) expires after this long, so a killed worker cannot block a type forever.
SYNC_LOCK_TTL_SECONDS = env.int("SYNC_LOCK_TTL_SECONDS", default=30 * 60)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
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
