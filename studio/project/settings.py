"""Castboard settings: the one settings module, driven by environment variables.

Every variable is documented in README.md and .env.example.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from kombu import Queue

from studio.project.csp import CSP, storage_origins
from studio.project.env import (
    env_bool,
    env_float,
    env_int,
    env_int_list,
    env_list,
    env_rate,
    env_secret,
    env_str,
)

# The repository: studio/project/settings.py is two packages down.
BASE_DIR = Path(__file__).resolve().parents[2]
VAR_DIR = Path(env_str("CASTBOARD_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", False)
# Off DEBUG both must be set, the same on every process: the web, workers and beat refuse
# to start without them (studio.project.startup), naming them; commands that need neither
# still run.
SECRET_KEY = env_secret("SECRET_KEY", fallback_file=VAR_DIR / "secret_key", generate=DEBUG)
# Keys that encrypt provider API keys at rest. Comma-separated: the first
# encrypts, all of them decrypt, so a key can be rotated without downtime.
ENCRYPTION_KEYS = [
    key.strip()
    for key in env_secret(
        "ENCRYPTION_KEYS", fallback_file=VAR_DIR / "encryption_key", generate=DEBUG
    ).split(",")
    if key.strip()
]
MISSING_SECRETS = [
    name
    for name, value in (("SECRET_KEY", SECRET_KEY), ("ENCRYPTION_KEYS", ENCRYPTION_KEYS))
    if not value
]

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "storages",
    "ninja",
    "studio",
    "characters",
    "jobs",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "studio.project.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Gzip for pages, fragments and JSON (never event streams or media): below WhiteNoise,
    # which serves static files compressed already; above every middleware that reads a
    # body (ApiMiddleware keeps answers for Idempotency-Key replays), so they see it plain.
    "studio.project.compression.CompressionMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    # Token-authenticated /api/v1/ and /gateway/ calls: 401, 429, Idempotency-Key, call log.
    "studio.api.middleware.ApiMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    # Django's, with sessions of Django's own ModelBackend moved to studio.sessions.Backend.
    "studio.sessions.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "studio.throttles.RefusalMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

# Django's ModelBackend with the user read of every request compiled (studio.sessions).
AUTHENTICATION_BACKENDS = ["studio.sessions.Backend"]

ROOT_URLCONF = "studio.urls"
WSGI_APPLICATION = "studio.project.wsgi.application"
ASGI_APPLICATION = "studio.project.asgi.application"

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
                "studio.context_processors.workspaces",
            ],
        },
    },
    {
        # Only the storyboard's cards (templates/jinja2/): rendered hundreds at a time,
        # they cost a tenth of what they did in Django's engine. Views name this engine
        # when they render one (using=studio.http.JINJA).
        "NAME": "jinja2",
        "BACKEND": "django.template.backends.jinja2.Jinja2",
        "DIRS": [BASE_DIR / "templates" / "jinja2"],
        "APP_DIRS": False,
        "OPTIONS": {"environment": "studio.project.jinja_env.environment"},
    },
]

# Databases: SQLite under var/ unless DATABASE_URL names another.
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'castboard.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0, minimum=0),
        # A kept connection is checked before a request reuses it (a database restarted
        # meanwhile costs nothing but a reconnect).
        conn_health_checks=True,
    )
}
# On PostgreSQL, a pool of at most this many connections per process, shared by its threads
# (Django's own pooling, psycopg_pool): a gunicorn worker's many threads (each open page's
# event stream holds one) then neither open a connection per request (a server process
# each) nor keep one each. 0 (the default; gunicorn's config sets 16): no pool.
DATABASE_POOL_SIZE = env_int("DATABASE_POOL_SIZE", 0, minimum=0)
if DATABASE_POOL_SIZE and DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"].update(CONN_MAX_AGE=0, CONN_HEALTH_CHECKS=False)
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": DATABASE_POOL_SIZE,
        "timeout": 20,  # a thread waits this long for a free connection, then errs
    }
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # SQLite makes the file, not its folder: on a fresh checkout var/ does not exist yet.
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    # IMMEDIATE takes the write lock at BEGIN, so read-then-write services
    # (scene reordering) serialise on SQLite as they do on PostgreSQL's row locks.
    # WAL: readers (the web, polls) go on while a worker writes, and a commit does not
    # wait for the disk twice; the workers, web and beat share this one file.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # A file, not Django's shared-cache in-memory default, whose table locks ignore
    # the busy timeout: tests then lock exactly as `make run` does. One file per test
    # run, so two runs on one checkout never share (or delete) each other's database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-castboard-{os.getpid()}.sqlite3")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The hot read queries compiled once per process (jobs.compiled) are also compiled the usual
# way on every run and compared, failing on any difference: on in the test suite.
COMPILED_QUERIES_VERIFY = env_bool("COMPILED_QUERIES_VERIFY", False)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# Static files are served by WhiteNoise in every run mode.
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]

# Media: local files under var/media by default; S3-compatible storage through
# django-storages when a bucket is named. Media is never served publicly: views
# check workspace access, then stream the file (or redirect to a signed URL).
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
AWS_STORAGE_BUCKET_NAME = env_str("AWS_STORAGE_BUCKET_NAME")
if AWS_STORAGE_BUCKET_NAME:
    _default_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": AWS_STORAGE_BUCKET_NAME,
            "endpoint_url": env_str("AWS_S3_ENDPOINT_URL") or None,
            "region_name": env_str("AWS_S3_REGION_NAME") or None,
            "access_key": env_str("AWS_ACCESS_KEY_ID") or None,
            "secret_key": env_str("AWS_SECRET_ACCESS_KEY") or None,
            "default_acl": None,
            "querystring_auth": True,
            "querystring_expire": env_int("AWS_QUERYSTRING_EXPIRE", 600, minimum=60),
            "file_overwrite": False,
            # Signed URLs in Signature Version 4: boto3 would sign them in the deprecated V2 on a
            # custom endpoint, which AWS regions opened since 2014 and Cloudflare R2 refuse.
            "signature_version": "s3v4",
        },
    }
else:
    _default_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": MEDIA_ROOT},
    }
STORAGES = {
    "default": _default_storage,
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = DEBUG

# Uploads: caps are enforced while the body streams in (characters.uploads).
FILE_UPLOAD_HANDLERS = [
    "characters.uploads.CappedUploadHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]
REFERENCE_IMAGE_MAX_BYTES = env_int("REFERENCE_IMAGE_MAX_BYTES", 15 * 1024 * 1024, minimum=1)
REFERENCE_CLIP_MAX_BYTES = env_int("REFERENCE_CLIP_MAX_BYTES", 100 * 1024 * 1024, minimum=1)
REFERENCE_IMAGE_MAX_PIXELS = env_int("REFERENCE_IMAGE_MAX_PIXELS", 40_000_000, minimum=1)
REFERENCE_CLIP_MAX_SECONDS = env_int("REFERENCE_CLIP_MAX_SECONDS", 30, minimum=1)
REFERENCE_CLIP_MAX_SIDE = env_int("REFERENCE_CLIP_MAX_SIDE", 3840, minimum=16)
# Importing a reference from a web address (characters.fetch): the whole download,
# redirects included, must finish within this many seconds.
REFERENCE_IMPORT_TIMEOUT_SECONDS = env_int("REFERENCE_IMPORT_TIMEOUT_SECONDS", 20, minimum=1)
# CIDRs the import may fetch from although they are private (e.g. 127.0.0.1/32). Empty by
# default: only tests that serve files on loopback, or a deliberate on-premises file
# server, should set it. A value that is not a network fails on the first import.
REFERENCE_IMPORT_ALLOWED_NETWORKS = env_list("REFERENCE_IMPORT_ALLOWED_NETWORKS", [])
DATA_UPLOAD_MAX_NUMBER_FILES = 20

# Redis and Celery. REDIS_URL is required outside `make run`/tests, which start
# an embedded server and set it.
REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
CELERY_BROKER_URL = REDIS_URL
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
# No result backend is set (no result is kept): Celery's DisabledBackend holds nothing, so a
# process's threads share one. Else each web thread built its own on its first send,
# scanning the installed packages' entry points (about 1% of the web server's time under
# benchmarks/load.py, 64 threads a worker).
CELERY_RESULT_BACKEND_THREAD_SAFE = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Longer than any countdown/eta the app schedules (CELERY_MAX_TASK_DELAY), so a
# delayed message is never redelivered while it is still waiting.
CELERY_MAX_TASK_DELAY = 30 * 60
# "priority": a worker that takes every queue (below) always takes a short step first (the
# default queue is listed first, then downloads, then drift scores), so a send never waits
# behind a download, nor a download behind a score.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": 2 * 60 * 60,
    "socket_connect_timeout": 3,
    "queue_order_strategy": "priority",
}
# A web request that enqueues while Redis is down gives up quickly: the job's row is the
# outbox the sweep reads (jobs.dispatch), so nothing is lost by not waiting.
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
}
# Two queues: downloads (streaming, probing, previews: seconds each) on their own, so the
# short steps (send, poll, reconcile, sweep) never wait behind them for a worker process.
# A worker started without -Q consumes both, sends first; `make run` (Procfile) runs one
# worker per queue.
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_MEDIA_QUEUE = "media"
# Drift scores: seconds of CPU each, so on their own queue (and worker): a download that frees a
# provider's slot never waits behind one.
CELERY_SCORES_QUEUE = "scores"
CELERY_TASK_QUEUES = (
    Queue(CELERY_TASK_DEFAULT_QUEUE),
    Queue(CELERY_MEDIA_QUEUE),
    Queue(CELERY_SCORES_QUEUE),
)
# Downloads and drift scores are the long, disk- and CPU-bound steps: they never hold up a send
# or a poll.
CELERY_TASK_ROUTES = {
    "jobs.tasks.download_job": {"queue": CELERY_MEDIA_QUEUE},
    "studio.tasks.score_take": {"queue": CELERY_SCORES_QUEUE},
    "studio.tasks.score_take_by_id": {"queue": CELERY_SCORES_QUEUE},
    # An episode's assembly: minutes of decoding and encoding, beside the downloads.
    "studio.tasks.assemble_cut": {"queue": CELERY_MEDIA_QUEUE},
}
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TIMEZONE = TIME_ZONE
# Beat's record of when each entry last ran is local state, so it lives under
# CASTBOARD_VAR_DIR like the rest (`celery beat --schedule` still overrides it).
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "sweep-jobs": {
        "task": "jobs.tasks.sweep_jobs",
        "schedule": env_int("JOBS_SWEEP_SECONDS", 2, minimum=1),
    },
    "clear-expired-sessions": {
        "task": "studio.tasks.clear_expired_sessions",
        "schedule": 6 * 60 * 60,
    },
    "score-overdue-takes": {
        "task": "studio.tasks.score_overdue_takes",
        "schedule": 60,
    },
    "sweep-cuts": {
        "task": "studio.tasks.sweep_cuts",
        "schedule": env_int("CUTS_SWEEP_SECONDS", 10, minimum=1),
    },
    "sweep-webhooks": {
        "task": "studio.tasks.sweep_webhooks",
        "schedule": env_int("WEBHOOKS_SWEEP_SECONDS", 10, minimum=1),
    },
    "prune-api-records": {"task": "studio.tasks.prune_api_records", "schedule": 3600},
    # Generate-alls whose message was lost (the broker away) or whose worker died.
    "sweep-generation-batches": {"task": "studio.tasks.sweep_generation_batches", "schedule": 30},
}

# The generation engine (jobs). Times in seconds.
PUBLIC_BASE_URL = env_str("PUBLIC_BASE_URL", "http://127.0.0.1:8000")
# The row that owns provider accounts, jobs, budgets and spend. The engine treats it as an
# opaque reference (a foreign key it scopes by), like AUTH_USER_MODEL.
JOBS_WORKSPACE_MODEL = "studio.Workspace"
# Celery tasks told (by name, with the job's id) when a job's result is stored: the drift
# score of a take, and a dubbing cut whose speech is all made. Empty turns both off (the
# test suite does, but for the tests of scoring and of cuts).
JOBS_SUCCEEDED_TASKS = tuple(
    env_list(
        "JOBS_SUCCEEDED_TASKS", ["studio.tasks.score_take", "studio.tasks.cut_speech_finished"]
    )
)
# Celery tasks told (by name, with the job's id and state) when a job ends in any way: the
# studio's take events for outgoing webhooks. Empty turns them off (the suite does, but for
# the tests of webhooks).
JOBS_ENDED_TASKS = tuple(env_list("JOBS_ENDED_TASKS", ["studio.tasks.take_ended"]))
# The drift scorer (studio/consistency/scoring.py): a class with `name` and `score()`; a
# stronger one (a GPU model, a provider's API) replaces the default here.
CONSISTENCY_SCORER = env_str("CONSISTENCY_SCORER", "studio.consistency.dlib_scorer.DlibScorer")
# A take is scored this long after it succeeded at the latest (the sweep's safety net for a
# lost message); a scoring claim older than the lease is taken over.
CONSISTENCY_SWEEP_AFTER_SECONDS = env_int("CONSISTENCY_SWEEP_AFTER_SECONDS", 120, minimum=5)
CONSISTENCY_LEASE_SECONDS = env_int("CONSISTENCY_LEASE_SECONDS", 600, minimum=10)
# Episode cuts: an assembly no worker took this long after it was sent is sent again; a
# worker renews its claim with each progress write, and one silent for the lease (it died)
# is taken over.
CUTS_SWEEP_AFTER_SECONDS = env_int("CUTS_SWEEP_AFTER_SECONDS", 120, minimum=5)
CUTS_LEASE_SECONDS = env_int("CUTS_LEASE_SECONDS", 300, minimum=10)
# Outgoing webhooks (studio.webhooks): seconds to wait after each failed attempt before the
# next (Standard Webhooks' recommendation: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h; after
# the last the delivery is given up); each attempt's whole deadline; how long an attempt or
# a queued message may go unheard of before the sweep (every WEBHOOKS_SWEEP_SECONDS) hands
# it out again, and how many due deliveries one sweep hands out. Destinations are checked
# like provider addresses: private networks only through PROVIDER_ALLOWED_NETWORKS.
WEBHOOKS_RETRY_SECONDS = tuple(
    env_int_list("WEBHOOKS_RETRY_SECONDS", [5, 300, 1800, 7200, 18000, 36000, 36000], minimum=0)
)
WEBHOOKS_TIMEOUT_SECONDS = env_int("WEBHOOKS_TIMEOUT_SECONDS", 10, minimum=1)
WEBHOOKS_LEASE_SECONDS = env_int("WEBHOOKS_LEASE_SECONDS", 120, minimum=5)
WEBHOOKS_SWEEP_BATCH = env_int("WEBHOOKS_SWEEP_BATCH", 500, minimum=1)
# Delivered and given-up deliveries stay in each endpoint's log this many days.
WEBHOOKS_KEEP_DAYS = env_int("WEBHOOKS_KEEP_DAYS", 30, minimum=1)
JOBS_PUBLIC_URL_SECONDS = env_int("JOBS_PUBLIC_URL_SECONDS", 3600, minimum=60)
JOBS_MIN_POLL_SECONDS = float(env_int("JOBS_MIN_POLL_MS", 1000, minimum=100)) / 1000
# A job that has been under way for a while is looked at less often (a tenth of its age),
# but at least this often (jobs.pipeline._next_poll_delay).
JOBS_MAX_POLL_SECONDS = float(env_int("JOBS_MAX_POLL_MS", 5000, minimum=100)) / 1000
JOBS_WEBHOOK_SAFETY_POLL_SECONDS = env_int("JOBS_WEBHOOK_SAFETY_POLL_SECONDS", 60, minimum=5)
JOBS_LEASE_SECONDS = env_int("JOBS_LEASE_SECONDS", 30, minimum=1)
# A download holds its job for this long and renews it (a heartbeat) every third of it
# while bytes arrive, so a killed worker's download is taken over within one lease.
JOBS_DOWNLOAD_LEASE_SECONDS = env_int("JOBS_DOWNLOAD_LEASE_SECONDS", 30, minimum=3)
# A job still "sending" this long past its provider call's timeout was lost with its worker:
# it is reconciled (the call can no longer be under way, so looking cannot race it).
JOBS_SUBMIT_STALE_SECONDS = env_int("JOBS_SUBMIT_STALE_SECONDS", 15, minimum=1)
# Results: the largest video kept, the longest one download may take in all, and how long a
# video the provider reports finished may take to become downloadable before the job fails.
JOBS_RESULT_MAX_BYTES = env_int("JOBS_RESULT_MAX_BYTES", 4 * 1024**3, minimum=1024)
JOBS_DOWNLOAD_TIMEOUT_SECONDS = env_int("JOBS_DOWNLOAD_TIMEOUT_SECONDS", 900, minimum=1)
JOBS_RESULT_WAIT_SECONDS = env_int("JOBS_RESULT_WAIT_SECONDS", 900, minimum=1)
JOBS_MAX_DOWNLOAD_ATTEMPTS = env_int("JOBS_MAX_DOWNLOAD_ATTEMPTS", 8, minimum=1)
JOBS_RECONCILE_DELAY_SECONDS = env_int("JOBS_RECONCILE_DELAY_SECONDS", 5, minimum=0)
JOBS_SWEEP_GRACE_SECONDS = env_int("JOBS_SWEEP_GRACE_SECONDS", 10, minimum=0)
JOBS_LANE_RECHECK_SECONDS = env_int("JOBS_LANE_RECHECK_SECONDS", 30, minimum=1)
JOBS_BACKOFF_BASE_SECONDS = env_int("JOBS_BACKOFF_BASE_SECONDS", 2, minimum=1)
JOBS_MAX_BACKOFF_SECONDS = env_int("JOBS_MAX_BACKOFF_SECONDS", 300, minimum=1)
JOBS_MAX_SUBMIT_ATTEMPTS = env_int("JOBS_MAX_SUBMIT_ATTEMPTS", 8, minimum=1)
JOBS_PROVIDER_TIMEOUT_SECONDS = env_int("JOBS_PROVIDER_TIMEOUT_SECONDS", 30, minimum=1)
# Circuit breaker per provider account (jobs.breaker): opens after this many outage-like
# failures in a row, and lets one trial through after the cool-down.
JOBS_BREAKER_FAILURES = env_int("JOBS_BREAKER_FAILURES", 3, minimum=1)
JOBS_BREAKER_COOLDOWN_SECONDS = env_int("JOBS_BREAKER_COOLDOWN_SECONDS", 30, minimum=1)
# The stability policy judges an account by its jobs of the last this-many days.
JOBS_STABILITY_DAYS = env_int("JOBS_STABILITY_DAYS", 7, minimum=1)
# Private networks (CIDRs) provider requests may go to: a self-hosted gateway, or the
# emulators of `make run` (which sets 127.0.0.1/32). Empty by default: base URLs and result
# links must be public addresses (jobs.providers.transport).
PROVIDER_ALLOWED_NETWORKS = env_list("PROVIDER_ALLOWED_NETWORKS", [])
# The emulators `make run` starts; the demo workspace's accounts point at them.
# Where the demo's accounts find each emulator, by kind (jobs.emulators.catalog has the
# defaults), e.g. EMULATOR_SEEDANCE_URL=http://127.0.0.1:9103/api/v3.
_EMULATOR_URL_VARIABLES = {
    "openai": "EMULATOR_OPENAI_URL",
    "sora_relay": "EMULATOR_RELAY_URL",
    "seedance": "EMULATOR_SEEDANCE_URL",
    "kling": "EMULATOR_KLING_URL",
    "veo": "EMULATOR_VEO_URL",
    "gemini": "EMULATOR_GEMINI_URL",
    "runway": "EMULATOR_RUNWAY_URL",
    "fal": "EMULATOR_FAL_URL",
    "elevenlabs": "EMULATOR_ELEVENLABS_URL",
}
EMULATOR_URLS = {
    kind: os.environ[name] for kind, name in _EMULATOR_URL_VARIABLES.items() if os.environ.get(name)
}

# Live progress on the storyboard (studio/views/live.py): each open page holds one event
# stream (one web thread) for up to LIVE_STREAM_SECONDS, then reconnects; the stream rereads
# what changed every LIVE_RESYNC_SECONDS even when it hears nothing from Redis. A page whose
# browser cannot keep a stream polls once every LIVE_POLL_SECONDS instead.
LIVE_STREAM_SECONDS = env_int("LIVE_STREAM_SECONDS", 60, minimum=1)
LIVE_RESYNC_SECONDS = env_int("LIVE_RESYNC_SECONDS", 5, minimum=1)
# A stream with nothing to send for this long writes a comment line: a browser that has left
# is only noticed when a write to it fails, and until then its stream holds a thread (and
# reads the rows at each resync). The resync's line does it when it comes sooner.
LIVE_HEARTBEAT_SECONDS = env_float("LIVE_HEARTBEAT_SECONDS", 15.0, minimum=0.1)
LIVE_POLL_SECONDS = env_int("LIVE_POLL_SECONDS", 3, minimum=1)
# The storyboard renders this many cards at first (several screens of the list) and brings
# the next as the user scrolls: a 3,000-scene episode's page costs what a 24-scene one does
# (benchmarks/storyboard.py); 24 rather than 50 took a fifth off the page's p95 under
# benchmarks/load.py.
STORYBOARD_SLICE = env_int("STORYBOARD_SLICE", 24, minimum=1)

# Rate limits (studio.throttles), as requests/seconds, shared by every process through Redis.
# Starting takes and importing references from the web: per user, and per workspace.
RATE_LIMIT_GENERATE = env_rate("RATE_LIMIT_GENERATE", "20/60")
RATE_LIMIT_GENERATE_WORKSPACE = env_rate("RATE_LIMIT_GENERATE_WORKSPACE", "60/60")
RATE_LIMIT_IMPORT = env_rate("RATE_LIMIT_IMPORT", "20/60")
RATE_LIMIT_IMPORT_WORKSPACE = env_rate("RATE_LIMIT_IMPORT_WORKSPACE", "60/60")
# Failed sign-ins: per account name at one address, per address, and per account name.
# Requests per API token (REST API and gateways); paid creates also count as generations.
RATE_LIMIT_API = env_rate("RATE_LIMIT_API", "600/60")
# How long the studio keeps each token's call log, and answers kept for Idempotency-Keys.
API_CALLS_KEEP_DAYS = env_int("API_CALLS_KEEP_DAYS", 30, minimum=1)
API_IDEMPOTENCY_KEEP_HOURS = env_int("API_IDEMPOTENCY_KEEP_HOURS", 24, minimum=1)
RATE_LIMIT_LOGIN = env_rate("RATE_LIMIT_LOGIN", "5/900")
RATE_LIMIT_LOGIN_ADDRESS = env_rate("RATE_LIMIT_LOGIN_ADDRESS", "30/900")
RATE_LIMIT_LOGIN_ACCOUNT = env_rate("RATE_LIMIT_LOGIN_ACCOUNT", "50/3600")
# The request header holding the client's address when a proxy sets it (e.g.
# HTTP_X_REAL_IP); empty: REMOTE_ADDR. Only set it behind a proxy that overwrites it.
CLIENT_IP_HEADER = env_str("CLIENT_IP_HEADER", "")

# Security: production defaults whenever DEBUG is off; each can be overridden.
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31_536_000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
if env_bool("SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_HTTPONLY = True
# The database's sessions, read through a query compiled once per process (studio/sessions.py).
SESSION_ENGINE = "studio.sessions"
X_FRAME_OPTIONS = "DENY"

# Content-Security-Policy (studio.project.csp, in Django 6.0's SECURE_CSP shape), enforced in every
# run mode: scripts and styles come from our static files only, never inline, and htmx is
# told never to eval (templates/base.html). On S3, media views redirect players and
# thumbnails to signed URLs on the bucket's host. SECURE_CSP_REPORT_ONLY=true is the escape
# hatch: the same policy is only reported (in the browser's console), not enforced.
_MEDIA_ORIGINS = storage_origins(
    bucket=AWS_STORAGE_BUCKET_NAME,
    endpoint_url=env_str("AWS_S3_ENDPOINT_URL"),
    region=env_str("AWS_S3_REGION_NAME"),
)
_CONTENT_SECURITY_POLICY = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:", "blob:", *_MEDIA_ORIGINS],
    "media-src": [CSP.SELF, "blob:", *_MEDIA_ORIGINS],
    "connect-src": [CSP.SELF],
    "font-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.SELF],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}
if env_bool("SECURE_CSP_REPORT_ONLY", False):
    SECURE_CSP, SECURE_CSP_REPORT_ONLY = {}, _CONTENT_SECURITY_POLICY
else:
    SECURE_CSP, SECURE_CSP_REPORT_ONLY = _CONTENT_SECURITY_POLICY, {}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}
