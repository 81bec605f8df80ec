"""Settings for imweb, read from the environment (every variable is documented in README.md)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), not {value!r}")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {value!r}") from None


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


# Where this instance keeps its state: SQLite file, generated secret, uploads, embedded Valkey socket.
VAR_DIR = Path(os.environ.get("IMWEB_VAR_DIR") or BASE_DIR / "var").resolve()
VAR_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key() -> str:
    """SECRET_KEY from the environment, else one generated once and kept under VAR_DIR (never committed)."""
    if os.environ.get("SECRET_KEY"):
        return os.environ["SECRET_KEY"]
    path = VAR_DIR / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        key = secrets.token_urlsafe(64)
        # O_EXCL: when several processes start at once, exactly one writes and the others read its key.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_text().strip()
        with os.fdopen(fd, "w") as handle:
            handle.write(key)
        return key


SECRET_KEY = _secret_key()
DEBUG = env_bool("DEBUG", False)

# The XMPP domain of this server: local users are username@IMWEB_DOMAIN.
IMWEB_DOMAIN = os.environ.get("IMWEB_DOMAIN", "localhost").strip().lower()
PORT = env_int("PORT", 8000)
IMWEB_BIND = os.environ.get("IMWEB_BIND", "127.0.0.1")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
# Reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (imweb.proxy); nobody else's are.
IMWEB_TRUSTED_PROXIES = env_list("IMWEB_TRUSTED_PROXIES", [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "channels",
    "django_htmx",
    "ninja",  # its static Swagger UI assets, served from our own origin (the CDN template breaks our CSP)
    "allauth",
    "allauth.account",
    "allauth.mfa",  # two-factor sign-in: an authenticator app (TOTP) and recovery codes
    "allauth.usersessions",  # the list of a person's signed-in sessions, each of which they can end
    "accounts",
    "chat",
    "federation",
    "imweb.dashboard",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "imweb.middleware.ContentSecurityPolicyMiddleware",
    "imweb.middleware.StaticFilesMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "imweb.middleware.PrivatePagesMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "accounts.mfa.SessionActivityMiddleware",
    "accounts.mfa.StaffTwoFactorMiddleware",
]

ROOT_URLCONF = "imweb.urls"
ASGI_APPLICATION = "imweb.asgi.application"
WSGI_APPLICATION = None

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
                "accounts.context_processors.account_status",
                "imweb.dashboard.context.dashboard",
            ],
        },
    },
    {
        # The partials on the delivery path (chat.jinja): rendered for every message, so they must be fast.
        "BACKEND": "django.template.backends.jinja2.Jinja2",
        "DIRS": [BASE_DIR / "templates" / "jinja2"],
        "APP_DIRS": False,
        "OPTIONS": {"environment": "chat.jinja.environment", "autoescape": True, "trim_blocks": True},
    },
]

# --- Database -------------------------------------------------------------------------------------------
# Default: one SQLite file under VAR_DIR, in WAL mode with IMMEDIATE transactions so the web, worker and
# federation processes can all write without "database is locked" upgrades failing mid-transaction.
DATABASE_URL = os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'imweb.sqlite3'}"
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=0)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;",
    }
    # Keep each thread's connection open between calls: Channels runs every database call of the WebSocket
    # consumers on one thread and wraps each in close_old_connections(), which with CONN_MAX_AGE=0 closed and
    # reopened the file (and re-ran the PRAGMAs) around every call: a fifth of the web process's busy time under
    # load (bench/README.md). A connection that fails its health check is replaced on the next call.
    DATABASES["default"]["CONN_MAX_AGE"] = 60
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
else:
    # PostgreSQL: a pool of connections per process (psycopg_pool, through Django's "pool" option). Without one,
    # every database call of a WebSocket consumer opens a new connection, which forks a server backend: measured
    # at 2.4x the server CPU per delivered message (bench/README.md). Django allows no CONN_MAX_AGE with a pool.
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": env_int("IMWEB_DB_POOL_SIZE", 10),
        "timeout": 10,
    }
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

# --- Redis / Valkey: channel layer, Celery broker, shared cache (rate limits) ---------------------------
# Unset: the embedded Valkey that `make run` (imweb.supervisor) starts on a unix socket under VAR_DIR.
EMBEDDED_REDIS_SOCKET = VAR_DIR / "valkey.sock"
REDIS_URL = os.environ.get("REDIS_URL") or f"unix://{EMBEDDED_REDIS_SOCKET}?db=0"
REDIS_MAX_CONNECTIONS = env_int("IMWEB_REDIS_MAX_CONNECTIONS", 1000)


def _celery_broker_url(redis_url: str) -> str:
    # kombu spells a unix-socket Redis as redis+socket://PATH rather than redis-py's unix://PATH.
    if redis_url.startswith("unix://"):
        return "redis+socket://" + redis_url.removeprefix("unix://")
    return redis_url


CHANNEL_LAYERS = {
    "default": {
        # The pub/sub layer: 2.5x faster here than the core layer, and correctness comes from catch-up by
        # sequence from the database, never from the layer.
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL]},
    }
}

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "imweb",
        "OPTIONS": {"max_connections": REDIS_MAX_CONNECTIONS, "pool_class": "imweb.cache.SharedConnectionPool"},
    }
}

CELERY_BROKER_URL = _celery_broker_url(REDIS_URL)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = "UTC"

# --- Passwords and sessions -----------------------------------------------------------------------------
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
# Sessions are read on every page load and socket connect: from the shared cache, the database only when the
# cache lost them (the embedded Valkey keeps nothing across restarts), so a reconnect storm costs no SQL for them.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
SESSION_COOKIE_AGE = 60 * 60 * 24 * 30
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"

# --- allauth --------------------------------------------------------------------------------------------
ACCOUNT_LOGIN_METHODS = {"username", "email"}
ACCOUNT_SIGNUP_FIELDS = ["username*", "email*", "password1*"]
ACCOUNT_EMAIL_VERIFICATION = "optional"  # unverified users may log in; the shell shows a banner
ACCOUNT_CONFIRM_EMAIL_ON_GET = False
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = False
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_PREVENT_ENUMERATION = True  # same response whether or not an account exists
ACCOUNT_PRESERVE_USERNAME_CASING = False
ACCOUNT_USERNAME_MIN_LENGTH = 1
ACCOUNT_USERNAME_VALIDATORS = "accounts.validators.USERNAME_VALIDATORS"
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_SESSION_REMEMBER = True
ACCOUNT_ADAPTER = "accounts.adapter.AccountAdapter"
# Counted in the shared cache (Redis), so every web process sees the same counters.
ACCOUNT_RATE_LIMITS = {
    # Sign-in attempts (the page and API token requests), whatever their outcome.
    "login": os.environ.get("IMWEB_LOGIN_ATTEMPT_RATE_LIMIT", "30/m/ip"),
    "login_failed": os.environ.get("IMWEB_LOGIN_RATE_LIMIT", "10/m/ip,5/5m/key"),
    "signup": os.environ.get("IMWEB_SIGNUP_RATE_LIMIT", "20/m/ip"),
    "reset_password": os.environ.get("IMWEB_RESET_RATE_LIMIT", "20/m/ip,5/m/key"),
    "reset_password_from_key": "20/m/ip",
    "confirm_email": "1/3m/key",
    "change_password": "5/m/user",
    "manage_email": "10/m/user",
}
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "home"
ACCOUNT_LOGOUT_REDIRECT_URL = "home"
# Two-factor sign-in, optional per person: an authenticator app and single-use recovery codes. The code asked for
# after the password counts against login_failed above (per account), so guessing it is as limited as a password.
# An address must be verified first (allauth's rule), so that nobody locks its owner out of an account they signed
# up under it. API tokens are still issued for a password (chat.api.endpoints).
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
# When on, staff without an authenticator app are sent to set one up when they sign in and cannot open the
# dashboard or Django's admin until they have (accounts.mfa).
IMWEB_REQUIRE_STAFF_2FA = env_bool("IMWEB_REQUIRE_STAFF_2FA", False)
# Signed-in sessions keep their last address and time seen (written at most once a minute per session, by
# accounts.mfa.SessionActivityMiddleware rather than allauth's own middleware, which writes on every request).
USERSESSIONS_TRACK_ACTIVITY = True
USERSESSIONS_ADAPTER = "accounts.mfa.UserSessionsAdapter"

# --- Contacts and presence ----------------------------------------------------------------------------
# After a declined contact request, the asker may ask again only after this long.
IMWEB_REREQUEST_COOLDOWN_SECONDS = env_int("IMWEB_REREQUEST_COOLDOWN_SECONDS", 24 * 60 * 60)
# A connected tab refreshes its presence session this often; sessions silent for 3x as long are swept.
IMWEB_PRESENCE_HEARTBEAT_SECONDS = env_int("IMWEB_PRESENCE_HEARTBEAT_SECONDS", 30)
CELERY_BEAT_SCHEDULE = {
    "sweep-stale-presence": {
        "task": "accounts.tasks.sweep_stale_presence",
        "schedule": float(IMWEB_PRESENCE_HEARTBEAT_SECONDS),
    },
}

# --- Chat limits -----------------------------------------------------------------------------------------


def env_limits(name: str, default: str) -> tuple[tuple[int, int], ...]:
    """Per-person limits as "COUNT/SECONDS,...": at most COUNT in each fixed window of SECONDS (chat.ratelimit)."""
    text = os.environ.get(name) or default
    limits = []
    for part in text.split(","):
        count, _, seconds = part.strip().partition("/")
        try:
            limit = (int(count), int(seconds))
        except ValueError:
            raise ImproperlyConfigured(f"{name} must look like 20/10,120/60 (count/seconds), not {text!r}") from None
        if limit[0] < 1 or limit[1] < 1:
            raise ImproperlyConfigured(f"{name}: counts and seconds must be 1 or more, not {part!r}")
        limits.append(limit)
    return tuple(limits)


# Messages (and edits) one person may send: bursts of 20 per 10 s, 120 per minute. Bots and busy rooms may need
# more; every message still reaches every participant, so these also bound what one person can cost the server.
IMWEB_MESSAGE_RATE_LIMITS = env_limits("IMWEB_MESSAGE_RATE_LIMITS", "20/10,120/60")
IMWEB_REACTION_RATE_LIMITS = env_limits("IMWEB_REACTION_RATE_LIMITS", "30/10,300/60")
# Sockets (browser tabs, API streams) one person may keep open on one web process; one more is refused.
IMWEB_MAX_SOCKETS_PER_PERSON = env_int("IMWEB_MAX_SOCKETS_PER_PERSON", 50)
# Contact requests one person may send (accepting someone who asked first does not count).
IMWEB_CONTACT_REQUEST_RATE_LIMITS = env_limits("IMWEB_CONTACT_REQUEST_RATE_LIMITS", "10/60,100/3600")
# The longest message, in characters.
IMWEB_MESSAGE_MAX_CHARS = env_int("IMWEB_MESSAGE_MAX_CHARS", 10_000)

# --- JSON API (/api/v1) ------------------------------------------------------------------------------
# Largest request body the API parses (a 10,000-character message fits even with every character escaped).
IMWEB_API_BODY_MAX_BYTES = env_int("IMWEB_API_BODY_MAX_BYTES", 256 * 1024)
# Tokens a user may hold; issuing one more revokes their least recently used.
IMWEB_API_MAX_TOKENS_PER_USER = env_int("IMWEB_API_MAX_TOKENS_PER_USER", 50)

# --- Federation (XMPP server-to-server; read and checked by federation.conf) -----------------------------
IMWEB_S2S_PORT = env_int("IMWEB_S2S_PORT", 5269)
IMWEB_S2S_BIND = os.environ.get("IMWEB_S2S_BIND", "")
IMWEB_S2S_TLS = os.environ.get("IMWEB_S2S_TLS", "required")
IMWEB_TLS_CERT = os.environ.get("IMWEB_TLS_CERT", "")
IMWEB_TLS_KEY = os.environ.get("IMWEB_TLS_KEY", "")
IMWEB_S2S_PEERS = os.environ.get("IMWEB_S2S_PEERS", "")
IMWEB_DIALBACK_SECRET = os.environ.get("IMWEB_DIALBACK_SECRET", "")
# Where other servers' operators report abuse (XEP-0157, in the server's disco#info): comma-separated URIs such as
# mailto:abuse@example.org,xmpp:abuse@example.org; none published when unset.
IMWEB_ABUSE_ADDRESSES = os.environ.get("IMWEB_ABUSE_ADDRESSES", "")
IMWEB_DNS_SERVER = os.environ.get("IMWEB_DNS_SERVER", "")
IMWEB_S2S_HANDSHAKE_TIMEOUT = os.environ.get("IMWEB_S2S_HANDSHAKE_TIMEOUT", "")
# Off: open federation (any server not denied in the admin). On: only servers set to "allow" in the admin.
IMWEB_FEDERATION_ALLOWLIST_ONLY = env_bool("IMWEB_FEDERATION_ALLOWLIST_ONLY", False)
# How long an outbound stanza keeps being retried before its sender sees "failed" (default: 3 days).
IMWEB_FEDERATION_RETENTION_SECONDS = env_int("IMWEB_FEDERATION_RETENTION_SECONDS", 3 * 24 * 60 * 60)
# Celery beat wakes the outbox sender this often (a fallback; commits wake it at once, and it polls too).
IMWEB_FEDERATION_WAKE_SECONDS = env_int("IMWEB_FEDERATION_WAKE_SECONDS", 30)
CELERY_BEAT_SCHEDULE["wake-federation-outbox"] = {
    "task": "federation.tasks.wake_outbox",
    "schedule": float(IMWEB_FEDERATION_WAKE_SECONDS),
}

# --- Email ----------------------------------------------------------------------------------------------
_EMAIL_BACKENDS = {
    "console": "django.core.mail.backends.console.EmailBackend",
    "smtp": "django.core.mail.backends.smtp.EmailBackend",
    "file": "django.core.mail.backends.filebased.EmailBackend",
    "locmem": "django.core.mail.backends.locmem.EmailBackend",
}
_email_backend = os.environ.get("IMWEB_EMAIL_BACKEND", "console")
if _email_backend not in _EMAIL_BACKENDS:
    raise ImproperlyConfigured(f"IMWEB_EMAIL_BACKEND must be one of {sorted(_EMAIL_BACKENDS)}")
EMAIL_BACKEND = _EMAIL_BACKENDS[_email_backend]
EMAIL_FILE_PATH = os.environ.get("IMWEB_EMAIL_FILE_PATH") or str(VAR_DIR / "mail")
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", f"imweb <noreply@{IMWEB_DOMAIN}>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# The service's name in the emails it sends ("Hello from imweb!"), rather than the host:port a request came to.
IMWEB_SITE_NAME = os.environ.get("IMWEB_SITE_NAME", "").strip() or "imweb"
ACCOUNT_EMAIL_SUBJECT_PREFIX = f"[{IMWEB_SITE_NAME}] "
MFA_TOTP_ISSUER = IMWEB_SITE_NAME  # what authenticator apps show next to the account
# A recipient who has not read a message this long gets one email about it (and whatever else is unread by
# then); 0 turns these emails off. Links in emails start with IMWEB_SITE_URL (sent by the worker, which has no
# request to take the address from).
IMWEB_MISSED_MESSAGE_EMAIL_SECONDS = env_int("IMWEB_MISSED_MESSAGE_EMAIL_SECONDS", 15 * 60)
# Beat looks for missed-message emails that are due this often (chat.actions.missed_email).
IMWEB_MISSED_EMAIL_SWEEP_SECONDS = env_int("IMWEB_MISSED_EMAIL_SWEEP_SECONDS", 60)
CELERY_BEAT_SCHEDULE["sweep-missed-emails"] = {
    "task": "chat.tasks.sweep_missed_emails",
    "schedule": float(IMWEB_MISSED_EMAIL_SWEEP_SECONDS),
}
# Data exports (accounts.export): a person's archive can be downloaded for this many days, then beat deletes it;
# a person may ask for a new one at most once per IMWEB_EXPORT_INTERVAL_SECONDS.
IMWEB_EXPORT_DAYS = env_int("IMWEB_EXPORT_DAYS", 7)
IMWEB_EXPORT_INTERVAL_SECONDS = env_int("IMWEB_EXPORT_INTERVAL_SECONDS", 60 * 60)
CELERY_BEAT_SCHEDULE["expire-data-exports"] = {"task": "accounts.tasks.expire_data_exports", "schedule": 600.0}
IMWEB_SITE_URL = (
    os.environ.get("IMWEB_SITE_URL")
    or f"{'https' if env_bool('IMWEB_HTTPS', False) else 'http'}://{ALLOWED_HOSTS[0].lstrip('.')}"
    + ("" if env_bool("IMWEB_HTTPS", False) or PORT == 80 else f":{PORT}")
).rstrip("/")

# --- Static files and uploads ---------------------------------------------------------------------------
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)  # WhiteNoise warns at start-up when it is missing
# Served by WhiteNoise straight from the source folders: no collectstatic step on the embedded path.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG
MEDIA_ROOT = VAR_DIR / "media"
AVATAR_MAX_BYTES = env_int("IMWEB_AVATAR_MAX_BYTES", 2 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440

# --- Attachments ----------------------------------------------------------------------------------------------
# Files people share (chat.models.Attachment) go through the storage named "attachments": the local file system
# under IMWEB_VAR_DIR/files by default.
IMWEB_FILES_DIR = Path(os.environ.get("IMWEB_FILES_DIR") or VAR_DIR / "files").resolve()
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "attachments": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(IMWEB_FILES_DIR), "base_url": None},
    },
}
# The largest file a person may share, and how much all of their files may take together.
IMWEB_MAX_FILE_BYTES = env_int("IMWEB_MAX_FILE_BYTES", 25 * 1024 * 1024)
IMWEB_FILE_QUOTA_BYTES = env_int("IMWEB_FILE_QUOTA_BYTES", 1024 * 1024 * 1024)
# A file sent to someone on another server goes as a signed link that opens without a session this many days.
IMWEB_SHARED_LINK_DAYS = env_int("IMWEB_SHARED_LINK_DAYS", 7)
# Files shared by link from other servers are fetched only from public addresses; these CIDRs (comma-separated)
# are let through as well: for tests and private deployments.
IMWEB_FETCH_ALLOW_NETWORKS = os.environ.get("IMWEB_FETCH_ALLOW_NETWORKS", "")
# Uploads one person may make (chat.files): a few dozen pictures at once, not a flood.
IMWEB_UPLOAD_RATE_LIMITS = env_limits("IMWEB_UPLOAD_RATE_LIMITS", "30/60,300/3600")
# Scaled mode: an S3-compatible object store (django-storages) holds the files instead, when a bucket is named.
# The credentials may also come from the usual AWS sources (environment, instance role) when left unset.
IMWEB_S3_BUCKET = os.environ.get("IMWEB_S3_BUCKET", "")
if IMWEB_S3_BUCKET:
    STORAGES["attachments"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": IMWEB_S3_BUCKET,
            "endpoint_url": os.environ.get("IMWEB_S3_ENDPOINT_URL") or None,
            "access_key": os.environ.get("IMWEB_S3_ACCESS_KEY_ID") or None,
            "secret_key": os.environ.get("IMWEB_S3_SECRET_ACCESS_KEY") or None,
            "region_name": os.environ.get("IMWEB_S3_REGION") or None,
            "default_acl": None,  # the bucket stays private: files are only ever served through imweb
            "querystring_auth": True,
            "file_overwrite": False,
        },
    }
# Uploads never sent are removed after a day; the same sweep makes thumbnails whose task was lost.
CELERY_BEAT_SCHEDULE["sweep-unsent-files"] = {"task": "chat.tasks.sweep_unsent_files", "schedule": 600.0}

# --- Security -------------------------------------------------------------------------------------------
# IMWEB_HTTPS=1 when the site is served over TLS (directly or behind a proxy that sets X-Forwarded-Proto).
IMWEB_HTTPS = env_bool("IMWEB_HTTPS", False)
if IMWEB_HTTPS:
    # Whether a request came over HTTPS is the ASGI scope's scheme, which imweb.proxy sets from a trusted proxy's
    # X-Forwarded-Proto (so no SECURE_PROXY_SSL_HEADER: that would believe the header from anyone).
    SECURE_SSL_REDIRECT = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("IMWEB_HSTS_SECONDS", 31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    # Preloading is a promise to browsers' built-in lists that is slow to take back: only when asked for. Django's
    # deploy check warns whenever it is off (security.W021); off is this setting's considered default, so the
    # warning is silenced only then.
    SECURE_HSTS_PRELOAD = env_bool("IMWEB_HSTS_PRELOAD", False)
    if not SECURE_HSTS_PRELOAD:
        SILENCED_SYSTEM_CHECKS = ["security.W021"]
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'"
)

# --- Internationalisation -------------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Logging --------------------------------------------------------------------------------------------
# --- Dashboard and monitoring ---------------------------------------------------------------------------
# /metrics (Prometheus text) answers a request bearing this token (Authorization: Bearer ...) or coming from one
# of these addresses or networks (comma-separated, e.g. "127.0.0.1,10.0.0.0/8"); everyone else gets 403.
IMWEB_METRICS_TOKEN = os.environ.get("IMWEB_METRICS_TOKEN", "")
IMWEB_METRICS_ALLOWED_IPS = [
    part.strip() for part in os.environ.get("IMWEB_METRICS_ALLOWED_IPS", "").split(",") if part.strip()
]
CELERY_BEAT_SCHEDULE["roll-up-metrics"] = {"task": "imweb.dashboard.tasks.roll_up_metrics", "schedule": 60.0}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(levelname)s %(name)s: %(message)s"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
        # Counts ERROR records per minute in the shared store, for the dashboard's "errors in the last hour".
        "error_count": {"class": "imweb.dashboard.metrics.ErrorCountHandler", "level": "ERROR"},
    },
    "root": {"handlers": ["console", "error_count"], "level": os.environ.get("IMWEB_LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
