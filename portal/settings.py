"""Settings for the Canvas family portal.

Everything that differs between a laptop and production comes from the environment (see
`.env.example`). Reads are typed and fail loudly: a malformed value stops the process at import
instead of surfacing later as odd behaviour.
"""

import os
import zoneinfo
from pathlib import Path
from urllib.parse import urlsplit

import environ
from celery.schedules import crontab
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy

from portal.palette import accent_palette

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_bool(name: str, *, default: bool) -> bool:
    # environ's own bool() reads any unknown word as False; a typo must not silently disable a setting.
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false, yes/no, on/off), not {raw!r}.")


def env_number(name: str, *, default: float, kind: type = float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a {kind.__name__}, not {raw!r}.") from None
    if value < 0:
        raise ImproperlyConfigured(f"{name} must not be negative, got {raw!r}.")
    return value


DEBUG = env_bool("DEBUG", default=False)

# pytest sets PYTEST_VERSION before any plugin runs, and pytest-django imports these settings before
# any conftest.py; this is the only point at which a test run can be told apart from production.
RUNNING_TESTS = "PYTEST_VERSION" in os.environ

SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not (DEBUG or RUNNING_TESTS):
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set SECRET_KEY to a long random string, or set DEBUG=1 for local development."
        )
    SECRET_KEY = "django-insecure-dev-only-key-never-use-in-production"  # noqa: S105

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1"] if DEBUG else [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.sites",
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.mfa",
    "linking.canvas_oauth",
    "linking",
    "linking.audit",
    # Only for its system checks (settings in the 4.0 format); the middleware sends the header.
    "csp",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Static files are answered here, before any middleware reads a session or the database.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    # Outside every middleware that may query the database, so that it sees their failures too.
    "portal.middleware.DatabaseUnavailableMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # A signed-in user's saved language over LocaleMiddleware's choice (linking/languages.py).
    "linking.languages.SavedLanguageMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "linking.staff.middleware.StaffMfaMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

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

# Database

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'var' / 'portal.sqlite3'}")}
_SUPPORTED_ENGINES = {"django.db.backends.sqlite3", "django.db.backends.postgresql"}
if DATABASES["default"]["ENGINE"] not in _SUPPORTED_ENGINES:
    # django-environ turns an unknown scheme into an engine name that only fails at first query.
    raise ImproperlyConfigured("DATABASE_URL must start with postgres:// or sqlite:///.")
# Each process keeps its connection for a minute rather than opening one per request: a new PostgreSQL
# connection costs a backend process and its authentication, a third of the database's CPU under load
# (bench/RESULTS.md, "The web"). Checked before each request reuses it, so one PostgreSQL dropped is
# replaced instead of failing the request. `?conn_max_age=0` in DATABASE_URL turns it off.
DATABASES["default"].setdefault("CONN_MAX_AGE", 60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if RUNNING_TESTS and DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # One test database per test process, so that two runs on one server do not drop each other's.
    DATABASES["default"].setdefault("TEST", {}).setdefault("NAME", f"test_{DATABASES['default']['NAME']}_{os.getpid()}")
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web process and the worker write to one file: take the write lock when a transaction
    # starts rather than failing with "database is locked" when a reader later tries to write.
    DATABASES["default"].setdefault("OPTIONS", {}).update({"transaction_mode": "IMMEDIATE", "timeout": 20})
    # A file, not memory, so that a worker thread in a test run sees the same database; one per test
    # process, so that two runs in one checkout do not delete each other's.
    DATABASES["default"].setdefault("TEST", {}).setdefault(
        "NAME", str(BASE_DIR / "var" / f"test-portal-{os.getpid()}.sqlite3")
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Accounts (django-allauth): parents sign in with a verified email address.

SITE_ID = 1
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
ACCOUNT_LOGIN_METHODS = {"email"}
# One password field: on a phone, typing it twice costs more than the reset-by-code it would save.
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*"]
# Adds the parent's name to the signup form and makes the Parent row (linking.services.people).
ACCOUNT_SIGNUP_FORM_CLASS = "linking.forms.ParentSignupForm"
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
# Codes rather than links: a parent may read the email on one device and sign up on another.
ACCOUNT_EMAIL_VERIFICATION_BY_CODE_ENABLED = True
ACCOUNT_LOGIN_BY_CODE_ENABLED = True
ACCOUNT_PASSWORD_RESET_BY_CODE_ENABLED = True
ACCOUNT_UNIQUE_EMAIL = True
# Signing out changes state, so it takes a POST (the header's button); a GET shows a confirmation page.
ACCOUNT_LOGOUT_ON_GET = False
# The default prefix is the Site's name, "example.com" until someone edits it in the admin. Lazy: it is
# translated into the language the email is sent in.
ACCOUNT_EMAIL_SUBJECT_PREFIX = gettext_lazy("Family Portal: ")
# ACCOUNT_RATE_LIMITS is left at allauth's defaults (codes, logins, signups, password resets).
LOGIN_REDIRECT_URL = "home"
# Each person lands on their own page after signing in (a parent on their children), and messages name them
# by name, not by the made-up username (linking/accounts.py).
ACCOUNT_ADAPTER = "linking.accounts.AccountAdapter"
ACCOUNT_USER_DISPLAY = "linking.accounts.user_display"
# The header shows "My children" or "My codes" by role.
TEMPLATES[0]["OPTIONS"]["context_processors"] += ["linking.context_processors.roles", "portal.school.school"]

# Argon2id at OWASP's parameters (portal/hashers.py); passwords hashed before it (PBKDF2) still verify and
# are rehashed with Argon2id at the parent's next sign-in.
PASSWORD_HASHERS = [
    "portal.hashers.Argon2idPasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Internationalisation

LANGUAGE_CODE = "en-us"
# The school's time zone: code expiry dates and times are shown in it. Stored times are always UTC.
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
try:
    zoneinfo.ZoneInfo(TIME_ZONE)
except (zoneinfo.ZoneInfoNotFoundError, ValueError):
    raise ImproperlyConfigured(f"TIME_ZONE must be an IANA zone such as America/Chicago, not {TIME_ZONE!r}.") from None
USE_I18N = True
USE_TZ = True

# Languages: family letters and emails in English or Spanish; a page's language follows the browser
# (LocaleMiddleware). Translations live in locale/ and the compiled .mo files are committed.
LANGUAGES = [("en", "English"), ("es", "Español")]
LOCALE_PATHS = [BASE_DIR / "locale"]
# End of Languages.

# The school (portal/school.py): its name and logo in every page's header, its colour for links and buttons.
SCHOOL_NAME = env.str("SCHOOL_NAME", default="").strip()
SCHOOL_LOGO = env.str("SCHOOL_LOGO", default="").strip()
if SCHOOL_LOGO:
    from portal.school import LOGO_MAX_BYTES, LOGO_TYPES

    SCHOOL_LOGO = Path(SCHOOL_LOGO)
    if not SCHOOL_LOGO.is_absolute() or not SCHOOL_LOGO.is_file():
        raise ImproperlyConfigured(f"SCHOOL_LOGO must be the absolute path of an image file, not {str(SCHOOL_LOGO)!r}.")
    if SCHOOL_LOGO.suffix.lower() not in LOGO_TYPES:
        kinds = ", ".join(sorted(LOGO_TYPES))
        raise ImproperlyConfigured(f"SCHOOL_LOGO must be a file ending {kinds}, not {SCHOOL_LOGO.name!r}.")
    if SCHOOL_LOGO.stat().st_size > LOGO_MAX_BYTES:
        raise ImproperlyConfigured("SCHOOL_LOGO is larger than 1 MiB; a header logo needs a few kilobytes.")
SCHOOL_COLOR = env.str("SCHOOL_COLOR", default="#0b5cad")
try:
    SCHOOL_PALETTE = accent_palette(SCHOOL_COLOR)
except ValueError as error:
    raise ImproperlyConfigured(f"SCHOOL_COLOR: {error}") from None

# Static files: the web serves them itself (WhiteNoise), so a deploy needs no file server or shared folder.

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# What collectstatic writes and WhiteNoise serves when DEBUG is off; the Docker image collects into the default.
STATIC_ROOT = Path(env.str("STATIC_ROOT", default="").strip() or BASE_DIR / "var" / "static")
if not STATIC_ROOT.is_absolute():
    raise ImproperlyConfigured(f"STATIC_ROOT must be an absolute path, not {str(STATIC_ROOT)!r}.")
# In production every file's name carries a hash of its content, so browsers keep it for good (WhiteNoise
# marks it immutable), and a gzipped copy sits beside it. The manifest from each name to its hashed name
# exists only once collectstatic has run, and without it every {% static %}, so every page, fails. So it is
# used only where collectstatic runs: production (the Docker image runs it, and so do the production
# servers of tests/security and the stacks of bench/). Elsewhere collectstatic never runs: with DEBUG on
# (make demo, docker-compose.demo.yml) and in the test process, which runs with DEBUG off. There the names
# stay plain and WhiteNoise finds each file in the source folders when it is asked for (autorefresh), so an
# edited file shows at once and nothing needs collecting.
_STATIC_COLLECTED = not (DEBUG or RUNNING_TESTS)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if _STATIC_COLLECTED
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = not _STATIC_COLLECTED
WHITENOISE_AUTOREFRESH = not _STATIC_COLLECTED

# Email

vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Canvas family portal <noreply@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# Celery

CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="redis://127.0.0.1:6379/0")
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default="") or None
# A task is acknowledged only after it finishes, so a worker killed mid-task hands it back to the queue.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# With late acks a prefetched task is stuck behind a slow one; take one at a time.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
# Redis redelivers an unacknowledged task after visibility_timeout; it must outlast the longest task
# (bounded by the time limit below) or a slow task runs twice.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}

# The demo without Redis: kombu's filesystem transport, a broker that needs no server. Web, worker
# and beat read this same file, so they write to and read from one folder under var/broker.
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = BASE_DIR / "var" / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
    }
    # kombu does not create them, and every process that queues a task needs them.
    for _folder in ("queue", "processed", "control"):
        (_broker_dir / _folder).mkdir(parents=True, exist_ok=True)

# End of the filesystem broker.
CELERY_TASK_TIME_LIMIT = 600
# A claim on a row older than this belongs to a dead worker, and another worker may take the row. It
# must outlast the longest task (the time limit), or a slow task's row is worked twice.
WORKER_CLAIM_TIMEOUT = env_number("WORKER_CLAIM_TIMEOUT", default=CELERY_TASK_TIME_LIMIT + 60, kind=int)
# The longest a task waits before retrying after an outage (Canvas or the database); the outbox calls a
# waiting row's message lost only after 1.5 times this plus a minute (linking.tasks.LOST_MESSAGE).
TASK_RETRY_BACKOFF_CAP = env_number("TASK_RETRY_BACKOFF_CAP", default=300.0)
if TASK_RETRY_BACKOFF_CAP < 1:
    raise ImproperlyConfigured("TASK_RETRY_BACKOFF_CAP must be at least 1 second.")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = TIME_ZONE
# Lets several portals (or a test run) share one Redis without taking each other's tasks.
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default="celery")
# The rows are the outbox: every minute, queue again what a lost message or a dead worker left behind.
CELERY_BEAT_SCHEDULE = {
    "outbox-requeue": {"task": "linking.tasks.outbox_requeue", "schedule": 60.0},
    # Compare the portal's links with Canvas every night (staff may also run it from the drift page).
    "reconcile-nightly": {"task": "linking.tasks.reconcile_run", "schedule": crontab(hour=2, minute=30)},
    # Anonymise the audit log's personal data past LinkPolicy.retention_days.
    "audit-retention-nightly": {"task": "linking.tasks.audit_retention_apply", "schedule": crontab(hour=3, minute=15)},
    # Copy the audit chain's head out of the database (a log line, and AUDIT_ANCHOR_FILE when set).
    # Forget the network addresses codes were entered from after a week (linking.services.guessing).
    "client-addresses-forget-nightly": {
        "task": "linking.tasks.client_addresses_forget",
        "schedule": crontab(hour=3, minute=30),
    },
    "audit-anchor-nightly": {"task": "linking.tasks.audit_anchor_write", "schedule": crontab(hour=3, minute=45)},
}
# The audit chain cannot show on its own that its newest events were deleted: a nightly copy of its head
# (SEQ:HASH lines) in a file the database's users cannot rewrite can, and verify_audit checks each one.
AUDIT_ANCHOR_FILE = env.str("AUDIT_ANCHOR_FILE", default="").strip()
if AUDIT_ANCHOR_FILE and not Path(AUDIT_ANCHOR_FILE).is_absolute():
    raise ImproperlyConfigured(f"AUDIT_ANCHOR_FILE must be an absolute path, not {AUDIT_ANCHOR_FILE!r}.")

# Bulk import drop folder
# A folder a nightly SIS export is written to; every 5 minutes the worker imports each *.csv there and
# moves it to processed/ (or failed/, with a .error.txt). Empty: off. The same beat entry also queues
# again import checks a lost message left behind, so it runs even when the folder is off.
IMPORT_DROP_FOLDER = env.str("IMPORT_DROP_FOLDER", default="").strip()
if IMPORT_DROP_FOLDER and not Path(IMPORT_DROP_FOLDER).is_absolute():
    raise ImproperlyConfigured(f"IMPORT_DROP_FOLDER must be an absolute path, not {IMPORT_DROP_FOLDER!r}.")
CELERY_BEAT_SCHEDULE["imports-drop-folder"] = {"task": "linking.tasks.import_drop_folder_pickup", "schedule": 300.0}
# End of the bulk import drop folder.

# Guessing pairing codes (linking.services.guessing). Within any hour a parent account may have at most
# CODE_GUESSES_PER_ACCOUNT codes waiting or wrong, and a network address CODE_GUESSES_PER_ADDRESS; reaching
# the limit in wrong codes pauses code entry there for CODE_LOCKOUT_HOURS, alerts staff and is audited.
# CODE_GUESSES_GLOBAL wrong codes in an hour, portal-wide, pause redemption (not entry) for an hour.
# docs/reliability.md turns these into the number of guesses an attacker gets.
CODE_GUESSES_PER_ACCOUNT = env_number("CODE_GUESSES_PER_ACCOUNT", default=10, kind=int)
CODE_GUESSES_PER_ADDRESS = env_number("CODE_GUESSES_PER_ADDRESS", default=30, kind=int)
CODE_GUESSES_GLOBAL = env_number("CODE_GUESSES_GLOBAL", default=100, kind=int)
CODE_LOCKOUT_HOURS = env_number("CODE_LOCKOUT_HOURS", default=24, kind=int)
for _name in ("CODE_GUESSES_PER_ACCOUNT", "CODE_GUESSES_PER_ADDRESS", "CODE_GUESSES_GLOBAL", "CODE_LOCKOUT_HOURS"):
    if globals()[_name] < 1:
        raise ImproperlyConfigured(f"{_name} must be 1 or more.")
# How many proxies in front of the portal append to X-Forwarded-For; 0 trusts only the connection's
# address. The per-address limits (here and allauth's) read the client's address through it.
ALLAUTH_TRUSTED_PROXY_COUNT = env_number("TRUSTED_PROXY_COUNT", default=0, kind=int)
# End of guessing pairing codes.

# The portal's own address, for links in emails and QR codes made outside a web request.
PORTAL_BASE_URL = env.str("PORTAL_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")
if urlsplit(PORTAL_BASE_URL).scheme not in {"http", "https"}:
    raise ImproperlyConfigured(f"PORTAL_BASE_URL must be an http:// or https:// URL, not {PORTAL_BASE_URL!r}.")

# Canvas

CANVAS_BASE_URL = env.str("CANVAS_BASE_URL", default="http://127.0.0.1:8001").rstrip("/")
_canvas_url = urlsplit(CANVAS_BASE_URL)
if _canvas_url.scheme not in {"http", "https"} or not _canvas_url.netloc:
    raise ImproperlyConfigured(
        f"CANVAS_BASE_URL must be an http:// or https:// URL such as https://school.instructure.com, "
        f"not {CANVAS_BASE_URL!r}."
    )
CANVAS_ADMIN_TOKEN = env.str("CANVAS_ADMIN_TOKEN", default="")
CANVAS_ACCOUNT_ID = env.str("CANVAS_ACCOUNT_ID", default="self")
# requests' advice: a connect timeout slightly over a multiple of 3 s, the TCP retransmission window.
CANVAS_TIMEOUT_CONNECT = env_number("CANVAS_TIMEOUT_CONNECT", default=3.05)
CANVAS_TIMEOUT_READ = env_number("CANVAS_TIMEOUT_READ", default=20.0)

# Canvas rate limiter: Canvas throttles per token once 12 requests are in flight, so every web and
# worker process shares one cap per token through Redis (linking/canvas/limiter.py). Empty or unset
# CANVAS_LIMITER_URL means the broker when it is Redis; "local" caps each process on its own.
# 11 is the most a bucket of 600 units holds at 50 a request, below the mark that refuses the 12th.
CANVAS_MAX_IN_FLIGHT = env_number("CANVAS_MAX_IN_FLIGHT", default=11, kind=int)
if CANVAS_MAX_IN_FLIGHT < 1:
    raise ImproperlyConfigured("CANVAS_MAX_IN_FLIGHT must be at least 1 (Canvas serves at most 11 at once).")
CANVAS_LIMITER_MAX_WAIT = env_number("CANVAS_LIMITER_MAX_WAIT", default=30.0)
if CANVAS_LIMITER_MAX_WAIT <= 0:
    raise ImproperlyConfigured("CANVAS_LIMITER_MAX_WAIT must be a number of seconds above 0.")
CANVAS_LIMITER_URL = env.str("CANVAS_LIMITER_URL", default="").strip()
if not CANVAS_LIMITER_URL:
    CANVAS_LIMITER_URL = CELERY_BROKER_URL if urlsplit(CELERY_BROKER_URL).scheme in {"redis", "rediss"} else ""
elif CANVAS_LIMITER_URL == "local":
    CANVAS_LIMITER_URL = ""
elif urlsplit(CANVAS_LIMITER_URL).scheme not in {"redis", "rediss", "unix"}:
    raise ImproperlyConfigured(
        "CANVAS_LIMITER_URL must be a redis://, rediss:// or unix:// URL, or 'local' (one cap per process)."
    )
# End of Canvas rate limiter.

# Sign in with Canvas: students sign in with their Canvas account (OAuth2 with PKCE) and get no portal
# password; parents keep email sign-in above. Without a client id the option is simply not offered.

_canvas_oauth_client_id = env.str("CANVAS_OAUTH_CLIENT_ID", default="").strip()
_canvas_oauth_client_secret = env.str("CANVAS_OAUTH_CLIENT_SECRET", default="").strip()
if _canvas_oauth_client_id and not _canvas_oauth_client_secret:
    raise ImproperlyConfigured("CANVAS_OAUTH_CLIENT_ID is set but CANVAS_OAUTH_CLIENT_SECRET is empty.")
SOCIALACCOUNT_PROVIDERS = {
    "canvas": {
        "APPS": (
            [{"client_id": _canvas_oauth_client_id, "secret": _canvas_oauth_client_secret}]
            if _canvas_oauth_client_id
            else []
        ),
        "OAUTH_PKCE_ENABLED": True,
    }
}
SOCIALACCOUNT_ADAPTER = "linking.canvas_oauth.adapter.SocialAccountAdapter"
# Kept for the Celery workers that act as the student (linking.canvas_oauth.tokens).
SOCIALACCOUNT_STORE_TOKENS = True
# Students may have no email address; an address never connects a Canvas login to a parent's account.
SOCIALACCOUNT_EMAIL_REQUIRED = False
SOCIALACCOUNT_EMAIL_VERIFICATION = "none"
SOCIALACCOUNT_EMAIL_AUTHENTICATION = False
SOCIALACCOUNT_AUTO_SIGNUP = True

# End of Sign in with Canvas.

# Staff second factor (allauth MFA): every /staff/ page needs an authenticator app (TOTP) and a session
# signed in with it (linking.staff.middleware). Recovery codes are made when the app is set up.
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
# The name the authenticator app shows next to the code.
MFA_TOTP_ISSUER = "Family Portal"
# End of staff second factor.

# Security: on by default outside DEBUG, so a production deploy cannot forget them.

if not DEBUG:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    # Trusted only because the portal is deployed behind a TLS proxy that sets this header itself.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = env_number("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000, kind=int)
# The header covers this host and its own subdomains only (portal.school.org: *.portal.school.org), and
# "preload" only asks for a listing that someone must still submit; set both to 0 when the portal is
# served from the school's bare domain and other hosts under it still speak plain HTTP.
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
# A second line of defence behind the proxy's own redirect. Not under tests: the test client and the
# live server speak plain http:// (tests/security checks the production defaults in a fresh process).
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=not (DEBUG or RUNNING_TESTS))
# Load balancers and Docker's health check probe /healthz over plain HTTP inside the network (portal/health.py).
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
# Pairing codes travel in the "Add a child" link's query string: no other site may see it in a Referer.
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy (django-csp): every script and stylesheet is a file of ours, never inline, so
# nothing else may run even if a page is ever made to carry markup. Forms may post to Canvas as well,
# since "Sign in with Canvas" posts to the portal, which redirects the form to Canvas. Images may be
# data: URIs for allauth's authenticator set-up page (its QR code); the portal's own QR codes are inline SVG.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF, CANVAS_BASE_URL],
        "frame-ancestors": [NONE],
    },
}
# End of security.

# Cache: allauth's rate limits (sign-in, codes, sign-up, password reset) and the TOTP codes already used
# live here, so every web process must share one: Redis in production, e.g. redis://127.0.0.1:6379/1.
# The default, memory, is per process and fits one process (the demo, the tests) only.
CACHES = {"default": env.cache_url("CACHE_URL", default="locmemcache://")}

# Logging

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO").upper()
if LOG_LEVEL not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
    raise ImproperlyConfigured(f"LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, not {LOG_LEVEL!r}.")
# text for a person at a terminal; json for a log collector: one object a line (portal/logs.py), the same
# from the web, gunicorn (portal/gunicorn_config.py), the worker and beat (portal/celery.py).
LOG_FORMAT = env.str("LOG_FORMAT", default="text").strip().lower() or "text"
if LOG_FORMAT not in {"text", "json"}:
    raise ImproperlyConfigured(f"LOG_FORMAT must be text or json, not {LOG_FORMAT!r}.")

# Every handler hides secrets in what it writes (linking.canvas.redaction): a pairing code in a request
# line's query string (the "Add a child" link, and sign-in's next=), a token, a password. Django's
# request log (django.server, runserver's) is redefined here to get the filter too.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "redact_secrets": {"()": "linking.canvas.redaction.RedactSecretsFilter"},
    },
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "portal.logs.JsonFormatter"},
        "django.server": {
            "()": "django.utils.log.ServerFormatter",
            "format": "[{server_time}] {message}",
            "style": "{",
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "plain",
            "filters": ["redact_secrets"],
        },
        "django.server": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "django.server",
            "filters": ["redact_secrets"],
        },
    },
    "loggers": {
        "django.server": {"handlers": ["django.server"], "level": "INFO", "propagate": False},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
}
