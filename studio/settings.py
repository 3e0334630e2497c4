"""Memory Studio settings, read from the environment through django-environ.

Defaults are production's: DEBUG off, HTTPS only, hashed static files; `make run` and the
tests turn DEBUG on for themselves. Production sets SECRET_KEY, ALLOWED_HOSTS and
DATABASE_URL (README, "Running in production"). Without DATABASE_URL an embedded Postgres
under `.data/postgres` is started on demand: the runtime tables are Postgres-only, and so are we.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import environ
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from studio.database_urls import database_settings

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if (BASE_DIR / ".env").exists():
    environ.Env.read_env(BASE_DIR / ".env")

# Debug pages show settings and environment: only for whoever turns them on.
DEBUG = env.bool("DEBUG", default=False)
_DEV_SECRET_KEY = "dev-only-insecure-key-change-me-in-production-0123456789"
SECRET_KEY = env.str("SECRET_KEY", default=_DEV_SECRET_KEY if DEBUG else "")
if not SECRET_KEY or (not DEBUG and SECRET_KEY == _DEV_SECRET_KEY):
    raise ImproperlyConfigured(
        "Set SECRET_KEY in the environment when DEBUG is off (50 or more random characters)."
    )
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "whitenoise.runserver_nostatic",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "template_partials",
    "csp",
    "axes",
    "agents",
    "memories",
    "studio.devtools",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "studio.middleware.ErrorPagesCSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "studio.middleware.DatabaseOutageMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "studio.middleware.StaffRequiredMiddleware",
    # Last, as axes asks: it turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "studio.urls"
WSGI_APPLICATION = "studio.wsgi.application"

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
            "builtins": ["template_partials.templatetags.partials", "studio.cached_url"],
        },
    },
]
# Django's widget templates, with the textarea and the inputs built in Python (same markup).
FORM_RENDERER = "studio.form_renderer.FormRenderer"

EMBEDDED_POSTGRES_DIR = Path(
    env.str("EMBEDDED_POSTGRES_DIR", default=str(BASE_DIR / ".data" / "postgres"))
)
if env.str("DATABASE_URL", default=""):
    DATABASES = {"default": database_settings(env.str("DATABASE_URL"))}
else:
    from studio.embedded_postgres import embedded_database

    DATABASES = {"default": embedded_database(EMBEDDED_POSTGRES_DIR)}
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DATABASES["default"].setdefault("OPTIONS", {})
DATABASES["default"]["OPTIONS"].setdefault("connect_timeout", 5)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Agents' runtime tables: the studio's own database unless RUNTIME_DATABASES names others.
from studio.postgres import use_studio_backend  # noqa: E402
from studio.runtime_databases import runtime_databases  # noqa: E402

_runtime_entries, RUNTIME_CONNECTIONS = runtime_databases(
    DATABASES["default"],
    databases=env.str("RUNTIME_DATABASES", default=""),
    replicas=env.str("RUNTIME_REPLICAS", default=""),
    read_only=env.str("RUNTIME_READ_ONLY", default=""),
)
DATABASES.update(_runtime_entries)
# Every connection on the studio's backend (studio/postgres): parameters bound on the server,
# statements prepared once they repeat, and a health check without a round trip.
DB_PREPARED_STATEMENTS = env.bool("DB_PREPARED_STATEMENTS", default=True)
use_studio_backend(DATABASES, prepared=DB_PREPARED_STATEMENTS)
# Runtime models follow the agent being read; studio tables are only ever migrated on default.
DATABASE_ROUTERS = ["memories.runtime.routing.RuntimeRouter"]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Axes first: it refuses a locked-out account before any password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "studio.auth.OneQueryPermissionsBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "agents:list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# Login throttling (django-axes), on the studio's login and Django admin's alike: a username
# tried from one address is locked after AXES_FAILURE_LIMIT failures, until
# `manage.py axes_reset_username USERNAME` (or `axes_reset`) or the cool-off passes.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
# The pair, not either alone: a stranger cannot lock an operator out from elsewhere.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_COOLOFF_TIME = env.float("AXES_COOLOFF_HOURS", default=1.0) or None
AXES_LOCKOUT_TEMPLATE = "lockout.html"
AXES_RESET_ON_SUCCESS = True
# Behind a proxy, REMOTE_ADDR is the proxy: name the header it puts the client's address in.
AXES_CLIENT_IP_CALLABLE = "studio.auth.client_ip_address"
CLIENT_IP_HEADER = env.str("CLIENT_IP_HEADER", default="")
# How many proxies of yours append to that header: the address is that many entries from the right.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=1)

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
# Production serves collectstatic's hashed, compressed copies through whitenoise; DEBUG and
# the tests read static/ as it is, so nothing needs collecting first.
STATIC_MANIFEST = env.bool("STATIC_MANIFEST", default=not DEBUG)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if STATIC_MANIFEST
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = not STATIC_MANIFEST
if not STATIC_MANIFEST:
    # The finders serve static/ itself: collectstatic's folder need not exist.
    warnings.filterwarnings("ignore", message="No directory at", category=UserWarning)

SESSION_ENGINE = "studio.sessions"  # database sessions, read without the ORM
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # htmx reads the token from the body's hx-headers, not the cookie
# HTTPS everywhere unless DEBUG: secure cookies, a redirect to https and HSTS. The loopback
# load run turns them off explicitly; /healthz stays reachable over plain http for probes.
SESSION_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
# A TLS-terminating proxy names the scheme in a header, e.g. HTTP_X_FORWARDED_PROTO.
_PROXY_SSL_HEADER = env.str("SECURE_PROXY_SSL_HEADER", default="")
SECURE_PROXY_SSL_HEADER = (_PROXY_SSL_HEADER, "https") if _PROXY_SSL_HEADER else None
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

# Memory text is written by LLMs from user input: no inline script or style may ever run.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "connect-src": [SELF],
        "font-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="WARNING")},
}

# Background jobs (issue 13): Django's task API, its database backend, `manage.py db_worker`.
INSTALLED_APPS += ["django_tasks", "django_tasks_db"]
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
# The token sweep recounts users whose memories changed, then runs again this many minutes later.
TOKEN_SWEEP_MINUTES = env.float("TOKEN_SWEEP_MINUTES", default=2)
# The trash empties itself of expired memories every this many minutes (agents set the days).
TRASH_EMPTY_MINUTES = env.float("TRASH_EMPTY_MINUTES", default=60)
# Mixed with SECRET_KEY into the HMAC that names a forgotten person on receipts and the audit log.
FORGET_RECEIPT_SALT = env.str("FORGET_RECEIPT_SALT", default="")
# A running job whose last batch is older than this (its worker died) is handed to another worker.
JOB_STALL_SECONDS = env.int("JOB_STALL_SECONDS", default=120)
# Finished agent exports wait here for their download (outside the repository's tracked files).
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(BASE_DIR / "media")))

# Imports larger than this (bytes) are always written by the workers, in batches.
IMPORT_IN_BACKGROUND_BYTES = env.int("IMPORT_IN_BACKGROUND_BYTES", default=2_000_000)
