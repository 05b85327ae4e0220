"""Django settings: everything that varies between machines comes from the environment (see README, Configuration)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from csp import constants as csp
from django.core.exceptions import ImproperlyConfigured

from workbench.env import env_bool, env_broker_url, env_database, env_int, env_list, env_path, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = env_path("WORKBENCH_DATA_DIR", BASE_DIR / "var")

DEBUG = env_bool("DEBUG", True)

SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off (production).")
    SECRET_KEY = "dev-only-insecure-key-never-used-with-debug-off"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"] if DEBUG else [])
if not DEBUG and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must be set when DEBUG is off (production).")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "csp",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "axes",
    "workbench.projects",
    "workbench.documents",
    "workbench.generation",
    "workbench.quality",
    "workbench.review",
    "workbench.exports",
    "workbench.demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # answers a locked-out login with the lockout page (429)
    "workbench.projects.api_errors.ApiLimitsAsJson",  # Django's request limits, on /api/, in JSON
]

ROOT_URLCONF = "workbench.urls"
WSGI_APPLICATION = "workbench.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            # Autoescape stays on: documents and model outputs are hostile text.
            "autoescape": True,
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": env_database("DATABASE_URL", f"sqlite:///{DATA_DIR / 'workbench.sqlite3'}")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Login throttling (django-axes): LOGIN_FAILURE_LIMIT failed logins for one username from one address lock that
# pair out for LOGIN_LOCKOUT_MINUTES; a successful login resets the count. `manage.py axes_reset` unlocks everyone.
AUTHENTICATION_BACKENDS = ["workbench.auth.LoginThrottleBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_LOCKOUT_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_CLIENT_IP_CALLABLE = "workbench.auth.client_ip"
LOGIN_PROXY_COUNT = env_int("LOGIN_PROXY_COUNT", 0, minimum=0)  # reverse proxies in front that set X-Forwarded-For
AXES_VERBOSE = False

# E-mail (invitations, password resets): SMTP when EMAIL_HOST is set, else printed to the web process's console.
EMAIL_HOST = env_str("EMAIL_HOST", "")
EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend" if EMAIL_HOST else "django.core.mail.backends.console.EmailBackend"
EMAIL_PORT = env_int("EMAIL_PORT", 587, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Genstruct Workbench <workbench@localhost>")

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "projects:list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env_path("STATIC_ROOT", DATA_DIR / "static")
MEDIA_ROOT = env_path("MEDIA_ROOT", DATA_DIR / "media")
if DEBUG:
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise serves from the finders, but wants the folder
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# --- Security -------------------------------------------------------------------------------------------------------
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SESSION_COOKIE_HTTPONLY = True
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31_536_000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
if env_bool("TRUST_X_FORWARDED_PROTO", False):
    # Only behind a TLS-terminating proxy that overwrites this header.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# No inline script or style anywhere: everything a user, document or model wrote must stay inert.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [csp.SELF],
        "script-src": [csp.SELF],
        "style-src": [csp.SELF],
        "img-src": [csp.SELF, "data:"],
        "connect-src": [csp.SELF],
        "font-src": [csp.SELF],
        "object-src": [csp.NONE],
        "base-uri": [csp.SELF],
        "form-action": [csp.SELF],
        "frame-ancestors": [csp.NONE],
    },
}

# --- JSON API ---------------------------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",  # Authorization: Token <key>
        "rest_framework.authentication.SessionAuthentication",  # the browser, with CSRF
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "workbench.projects.api_errors.api_exception_handler",  # JSON 500; 404s that name no model
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Genstruct Workbench API",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
}

# --- Celery (one configuration block; the `workbench.celery` app reads every CELERY_* name) -------------------------
CELERY_BROKER_URL = env_broker_url("CELERY_BROKER_URL", "filesystem://")
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 1800, minimum=1)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 2100, minimum=1)
CELERY_VISIBILITY_TIMEOUT = env_int("CELERY_VISIBILITY_TIMEOUT", 3600, minimum=1)
if not CELERY_TASK_SOFT_TIME_LIMIT < CELERY_TASK_TIME_LIMIT < CELERY_VISIBILITY_TIMEOUT:
    # A task still running when Redis' visibility timeout lapses is delivered a second time.
    raise ImproperlyConfigured(
        "CELERY_TASK_SOFT_TIME_LIMIT < CELERY_TASK_TIME_LIMIT < CELERY_VISIBILITY_TIMEOUT must hold; got "
        f"{CELERY_TASK_SOFT_TIME_LIMIT}, {CELERY_TASK_TIME_LIMIT}, {CELERY_VISIBILITY_TIMEOUT}."
    )
if CELERY_BROKER_URL.startswith("filesystem://"):
    # Embedded broker for a single machine: a real worker process reads the same folder.
    _broker_dir = DATA_DIR / "broker"
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
        # kombu lists the folder this often for new messages (1 s by default): a listing costs next to nothing, and a
        # run's next batch or an export starts within 0.1 s.
        "polling_interval": 0.1,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_VISIBILITY_TIMEOUT}
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True  # the database row is the truth about a job
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {"workers.tasks.*": {"queue": "gpu"}}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# The dispatch sweep (workbench/generation/tasks.py) queues again the batches whose worker stopped beating or whose
# message never reached the broker or was lost, and the jobs (imports, exports, re-scoring) the broker did not take. One beat process sends it: `celery beat` in production, `worker -B`
# in `manage.py serve`.
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# --- Models (GPU workers) --------------------------------------------------------------------------------------------
# Where weights live; hub ids resolve through this cache, and HF_HUB_OFFLINE=1 keeps workers from reaching the hub.
MODEL_CACHE_DIR = env_path("MODEL_CACHE_DIR", DATA_DIR / "models")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"client_errors_without_traceback": {"()": "workbench.logs.ClientErrorsWithoutTraceback"}},
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        # Django's own console handler (on with DEBUG) printed each of its records a second time beside the root's.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        # A 403 or 400 is the client's error: one line, not the traceback of the PermissionDenied that answered it.
        "django.request": {"handlers": [], "filters": ["client_errors_without_traceback"], "propagate": True},
    },
}

# --- Document import limits -------------------------------------------------------------------------------------------
DOCUMENTS_MAX_UPLOAD_BYTES = env_int("DOCUMENTS_MAX_UPLOAD_BYTES", 100 * 1024 * 1024, minimum=1)
DOCUMENTS_MAX_PER_IMPORT = env_int("DOCUMENTS_MAX_PER_IMPORT", 200_000, minimum=1)
DOCUMENTS_MAX_ARCHIVE_MEMBERS = env_int("DOCUMENTS_MAX_ARCHIVE_MEMBERS", 10_000, minimum=1)
DOCUMENTS_MAX_ARCHIVE_BYTES = env_int("DOCUMENTS_MAX_ARCHIVE_BYTES", 1024 * 1024 * 1024, minimum=1)
DOCUMENTS_INLINE_MAX_BYTES = env_int(
    "DOCUMENTS_INLINE_MAX_BYTES", 1024 * 1024, minimum=0
)  # larger uploads import as a Celery task
# A deletion from a page or the admin that takes more pairs than this is refused there (a request would time out and
# roll back): `manage.py delete_project` deletes it.
DELETE_INLINE_MAX_PAIRS = env_int("DELETE_INLINE_MAX_PAIRS", 250_000, minimum=0)
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_HANDLERS = [  # Django's two, with the file name a browser percent-encoded decoded (`"` is sent as %22)
    "workbench.documents.uploads.MemoryUploadHandler",
    "workbench.documents.uploads.TemporaryUploadHandler",
]

# --- Generation ----------------------------------------------------------------------------------------------------------
GENERATION_BACKEND = env_str(
    "GENERATION_BACKEND", "auto"
)  # auto (slots for Llama-shaped models) | slots | batched | continuous (see workers/engine.py)
if GENERATION_BACKEND not in ("auto", "slots", "batched", "continuous"):  # workers.engine.BACKENDS
    raise ImproperlyConfigured(f"GENERATION_BACKEND={GENERATION_BACKEND!r}: use auto, slots, batched or continuous.")
GENERATION_COMPILE = (
    None if env_str("GENERATION_COMPILE", "auto").lower() == "auto" else env_bool("GENERATION_COMPILE", True)
)  # torch.compile in the slots backend; auto = on GPUs
GENERATION_FP8 = env_str(
    "GENERATION_FP8", "off"
)  # off | prefill | all: FP8 matmuls in the slots backend (Hopper GPUs; docs/PERFORMANCE.md)
if GENERATION_FP8 not in ("off", "prefill", "all"):
    raise ImproperlyConfigured(f"GENERATION_FP8={GENERATION_FP8!r}: use off, prefill or all.")
GENERATION_MAX_BATCH = env_int("GENERATION_MAX_BATCH", 512, minimum=1)  # sequences decoded together (slots) per GPU
GENERATION_SAVE_EVERY = env_int("GENERATION_SAVE_EVERY", 64, minimum=1)  # samples stored together while a batch runs
# How long the writer thread may hold the GIL before the generating thread gets it back, while both run (Python's
# default is 5,000 µs; the figures with each: docs/PERFORMANCE.md, generation end to end). 0: Python's own.
GENERATION_SWITCH_INTERVAL_US = env_int("GENERATION_SWITCH_INTERVAL_US", 500, minimum=0)
GENERATION_BATCH_CHUNKS = env_int("GENERATION_BATCH_CHUNKS", 256, minimum=1)  # chunks per gpu-queue task (docs/PERFORMANCE.md)
GENERATION_HANDOVER = env_bool(
    "GENERATION_HANDOVER", True
)  # a worker fills the slots its batch's tail leaves free with the run's next batch (workers/tasks.py)
GENERATION_MAX_ATTEMPTS = env_int("GENERATION_MAX_ATTEMPTS", 3, minimum=1)  # a poison batch fails after this many
GENERATION_PREFLIGHT_TIMEOUT = env_int(
    "GENERATION_PREFLIGHT_TIMEOUT", 20, minimum=1
)  # s a run waits for a GPU worker to check its model before the run page says none answered
# A worker renews a running batch's heartbeat this often; a batch whose heartbeat is older than the stale limit has
# lost its worker and is queued again by the sweep, sent every GENERATION_SWEEP_SECONDS (also a message lost on its
# way is sent again after the stale limit).
GENERATION_HEARTBEAT_SECONDS = env_int("GENERATION_HEARTBEAT_SECONDS", 30, minimum=1)
GENERATION_STALE_SECONDS = env_int("GENERATION_STALE_SECONDS", 300, minimum=1)
GENERATION_SWEEP_SECONDS = env_int("GENERATION_SWEEP_SECONDS", 60, minimum=1)
if GENERATION_STALE_SECONDS < 2 * GENERATION_HEARTBEAT_SECONDS:
    # A live batch whose heartbeat is a moment late must not be taken for a dead one.
    raise ImproperlyConfigured(
        f"GENERATION_STALE_SECONDS ({GENERATION_STALE_SECONDS}) must be at least twice GENERATION_HEARTBEAT_SECONDS "
        f"({GENERATION_HEARTBEAT_SECONDS})."
    )
CELERY_BEAT_SCHEDULE = {
    "generation-dispatch-sweep": {
        "task": "workbench.generation.tasks.dispatch_sweep",
        "schedule": GENERATION_SWEEP_SECONDS,
        "options": {"expires": GENERATION_SWEEP_SECONDS},  # sweeps piled up while no worker ran are dropped
    }
}
MODEL_DEVICE = env_str("MODEL_DEVICE", "")  # "" picks cuda when available, else cpu

# --- Exports -------------------------------------------------------------------------------------------------------------
EXPORT_INLINE_MAX_ROWS = env_int("EXPORT_INLINE_MAX_ROWS", 20_000, minimum=0)  # larger exports run as a Celery task
EXPORT_BATCH_ROWS = env_int("EXPORT_BATCH_ROWS", 5_000, minimum=1)  # rows read at a time; progress is reported after each batch
