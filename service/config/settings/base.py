"""Settings shared by every environment.

This module is the only place that reads the process environment. The names it
reads are the container contract documented in service/README.md. Variables
that fell back to a development default are recorded in ``ENV_DEFAULTED`` so
that ``config.settings.production`` can refuse to start without them.
"""

import os
import ssl
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django_eks_runtime import logs

BASE_DIR = Path(__file__).resolve().parent.parent.parent

ENV_DEFAULTED: set[str] = set()


def _env(name: str, default: str) -> str:
    value = os.environ.get(name)
    if value is None or value == "":
        ENV_DEFAULTED.add(name)
        return default
    return value


def _env_int(name: str, default: int) -> int:
    raw = _env(name, str(default))
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from None


def _env_bool(name: str, default: bool) -> bool:
    raw = _env(name, "true" if default else "false").strip().lower()
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, got {raw!r}")


def _env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in _env(name, default).split(",") if item.strip()]


# --- The environment, read once -------------------------------------------
SECRET_KEY = _env("DJANGO_SECRET_KEY", "")
DEBUG = _env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = _env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = _env_list("DJANGO_CSRF_TRUSTED_ORIGINS", "")
SECURE_SSL_REDIRECT = _env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
DATABASE_URL = _env("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/django_eks")
REDIS_URL = _env("REDIS_URL", "redis://127.0.0.1:6379/0")
CELERY_TASK_TIME_LIMIT = _env_int("CELERY_TASK_TIME_LIMIT", 300)
CELERY_VISIBILITY_TIMEOUT = _env_int("CELERY_VISIBILITY_TIMEOUT", 900)
CELERY_HEARTBEAT_FILE = _env("CELERY_HEARTBEAT_FILE", "/tmp/celery-worker-heartbeat")
# The queue the web enqueues to and the workers consume; the cluster's queue-length autoscaler
# watches the Redis list of the same name (the infra program sets it; the default is the same).
CELERY_QUEUE = _env("CELERY_QUEUE", "jobs")
CELERY_HEARTBEAT_INTERVAL = _env_int("CELERY_HEARTBEAT_INTERVAL", 10)
JOBS_MAX_UPLOAD_BYTES = _env_int("JOBS_MAX_UPLOAD_BYTES", 10 * 1024 * 1024)
JOBS_MAX_PIXELS = _env_int("JOBS_MAX_PIXELS", 40_000_000)
# Uploads one web process inspects, reads and stores at once (each costs about nine times the
# file's size at its peak): with JOBS_MAX_UPLOAD_BYTES, what bounds the web pod's memory.
# Others wait JOBS_UPLOAD_WAIT_SECONDS, then get 503.
JOBS_MAX_CONCURRENT_UPLOADS = _env_int("JOBS_MAX_CONCURRENT_UPLOADS", 1)
JOBS_UPLOAD_WAIT_SECONDS = _env_int("JOBS_UPLOAD_WAIT_SECONDS", 20)
JOBS_OUTPUT_MAX_DIMENSION = _env_int("JOBS_OUTPUT_MAX_DIMENSION", 1280)
JOBS_OUTPUT_QUALITY = _env_int("JOBS_OUTPUT_QUALITY", 80)
# Publishing a job from a request: per-attempt socket timeout and retries, so a dead or
# hung Redis costs a POST about (retries + 1) x timeout before it answers 503.
JOBS_PUBLISH_TIMEOUT = float(_env_int("JOBS_PUBLISH_TIMEOUT_MS", 1000)) / 1000
JOBS_PUBLISH_RETRIES = _env_int("JOBS_PUBLISH_RETRIES", 1)
# A job whose worker died on this many deliveries (OOM kill, time limit) is failed.
JOBS_MAX_ATTEMPTS = _env_int("JOBS_MAX_ATTEMPTS", 3)
# The reconciler (python manage.py jobs_reconcile): a job queued this long without a
# worker starting it gets one more message; a job running longer than the task time
# limit plus this grace lost its worker and is re-enqueued.
JOBS_REQUEUE_QUEUED_AFTER = _env_int("JOBS_REQUEUE_QUEUED_AFTER", 600)
JOBS_REQUEUE_RUNNING_GRACE = _env_int("JOBS_REQUEUE_RUNNING_GRACE", 60)
# A running job holds a lease this long, renewed every third of it by the process that runs it:
# the reconciler gives a job whose lease ran out (its worker was killed) to another worker.
JOBS_LEASE_SECONDS = _env_int("JOBS_LEASE_SECONDS", 30)
# A job queued this long whose message is in neither the queue nor the unacknowledged hash was
# lost with Redis (a restart, a failover): the reconciler publishes it again.
JOBS_LOST_AFTER = _env_int("JOBS_LOST_AFTER", 30)
# A reconciler pass refuses to expire more than this percentage of all jobs at once.
JOBS_EXPIRE_MAX_PERCENT = _env_int("JOBS_EXPIRE_MAX_PERCENT", 50)
# Database errors in a task are retried with exponential backoff up to this many seconds apart.
JOBS_DB_RETRY_BACKOFF_MAX = _env_int("JOBS_DB_RETRY_BACKOFF_MAX", 30)
CELERY_BROKER_SOCKET_TIMEOUT = _env_int("CELERY_BROKER_SOCKET_TIMEOUT", 30)
API_IO_ENABLED = _env_bool("API_IO_ENABLED", False)
# Uploads and results: in this S3 bucket when it is named (the cluster), else in a local directory.
AWS_STORAGE_BUCKET_NAME = _env("AWS_STORAGE_BUCKET_NAME", "")
AWS_S3_REGION_NAME = _env("AWS_S3_REGION_NAME", "") or None
# An S3-compatible server instead of AWS's endpoint (tests, other object stores).
AWS_S3_ENDPOINT_URL = _env("AWS_S3_ENDPOINT_URL", "") or None
MEDIA_ROOT = _env("DJANGO_MEDIA_ROOT", str(BASE_DIR / "media"))
# How long the presigned URL a result redirects to stays valid.
JOBS_RESULT_URL_EXPIRY_SECONDS = _env_int("JOBS_RESULT_URL_EXPIRY_SECONDS", 300)
# Days a job and its files are kept, counted from its creation (as the bucket's lifecycle counts
# an object's age); then the reconciler deletes them, and the API answers 410 for the id for
# JOBS_TOMBSTONE_DAYS more (then 404, as for an id that never existed).
JOBS_RETENTION_DAYS = _env_int("JOBS_RETENTION_DAYS", 7)
JOBS_TOMBSTONE_DAYS = _env_int("JOBS_TOMBSTONE_DAYS", 30)
# ---------------------------------------------------------------------------

INSTALLED_APPS = [
    "jobs.apps.JobsConfig",
]

MIDDLEWARE = [
    # First, so that kubelet and ALB probes (Host: <pod IP>, plain HTTP) are
    # answered before ALLOWED_HOSTS validation and the HTTPS redirect.
    "django_eks_runtime.probes.ProbeMiddleware",
    # Second: every request but the probes counted and timed by route, with its request id.
    "django_eks_runtime.metrics.MetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, so that it sees the exceptions of the views: a database outage answers 503.
    "jobs.outages.DatabaseOutageMiddleware",
]

# /readyz: the runtime's database and broker checks, then the uploads and results storage.
PROBE_READINESS_CHECKS = {
    "database": "django_eks_runtime.probes.check_database",
    "redis": "django_eks_runtime.probes.check_redis",
    "files": "jobs.readiness.check_files",
}

ROOT_URLCONF = "config.urls"
CSRF_FAILURE_VIEW = "django_eks_runtime.errors.csrf_failure"
WSGI_APPLICATION = "config.wsgi.application"
TEMPLATES: list[dict[str, object]] = []

DATABASES = {
    "default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True),
}
# Fail fast instead of hanging a request thread (or /readyz) on an unreachable database.
DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = 3
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en-us"
USE_I18N = False

# Uploads larger than this are spooled to a temporary file (under /tmp, an emptyDir in the cluster).
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440

if JOBS_LEASE_SECONDS < 3:
    raise ImproperlyConfigured(f"JOBS_LEASE_SECONDS must be at least 3, got {JOBS_LEASE_SECONDS}")
if not 1 <= JOBS_EXPIRE_MAX_PERCENT <= 100:
    raise ImproperlyConfigured(f"JOBS_EXPIRE_MAX_PERCENT must be between 1 and 100, got {JOBS_EXPIRE_MAX_PERCENT}")
if JOBS_RETENTION_DAYS < 1:
    raise ImproperlyConfigured(f"JOBS_RETENTION_DAYS must be at least 1, got {JOBS_RETENTION_DAYS}")
if not 1 <= JOBS_RESULT_URL_EXPIRY_SECONDS <= 604_800:
    # SigV4 presigned URLs are valid for at most seven days.
    raise ImproperlyConfigured(
        f"JOBS_RESULT_URL_EXPIRY_SECONDS must be between 1 and 604800, got {JOBS_RESULT_URL_EXPIRY_SECONDS}"
    )


def files_storage(
    *, bucket: str, region: str | None, endpoint_url: str | None, media_root: str, url_expiry_seconds: int
) -> dict[str, Any]:
    """The storage of uploads (``uploads/<job id>``) and results (``results/<job id>.webp``):
    the bucket when one is named, else the local directory."""
    if not bucket:
        return {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            # A retried write of the same key replaces the file, as it does on S3.
            "OPTIONS": {"location": media_root, "allow_overwrite": True},
        }
    from botocore.config import Config

    return {
        # django-storages' S3Storage (boto3), with a delete that does not ignore a missing bucket.
        "BACKEND": "jobs.files.BucketStorage",
        "OPTIONS": {
            "bucket_name": bucket,
            "region_name": region,
            "endpoint_url": endpoint_url,
            # Overwrite, never probe for a free name: that would be a HeadObject on uploads/,
            # which the web role may not do, and every key is the job's own anyway.
            "file_overwrite": True,
            # No ACL: the bucket enforces the owner (BucketOwnerEnforced) and refuses ACLs.
            "default_acl": None,
            "querystring_auth": True,
            "querystring_expire": url_expiry_seconds,
            # Short connect timeouts, so that an unreachable S3 costs a request thread seconds,
            # not a minute; the standard retry mode retries throttling and 5xx answers.
            "client_config": Config(
                signature_version="s3v4",
                connect_timeout=3,
                read_timeout=20,
                retries={"mode": "standard", "max_attempts": 3},
            ),
        },
    }


JOBS_FILES_STORAGE = files_storage(
    bucket=AWS_STORAGE_BUCKET_NAME,
    region=AWS_S3_REGION_NAME,
    endpoint_url=AWS_S3_ENDPOINT_URL,
    media_root=MEDIA_ROOT,
    url_expiry_seconds=JOBS_RESULT_URL_EXPIRY_SECONDS,
)
STORAGES = {"default": JOBS_FILES_STORAGE, "jobs": JOBS_FILES_STORAGE}


def _redis_ssl_options(url: str) -> dict[str, object] | None:
    """TLS options for a ``rediss://`` URL; certificates are always verified."""
    parts = urlsplit(url)
    if parts.scheme != "rediss":
        return None
    cert_reqs = parse_qs(parts.query).get("ssl_cert_reqs", ["required"])[-1].lower()
    if cert_reqs not in {"required", "cert_required"}:
        raise ImproperlyConfigured(
            "REDIS_URL: rediss:// needs ssl_cert_reqs=required (certificate verification cannot be disabled)"
        )
    return {"ssl_cert_reqs": ssl.CERT_REQUIRED}


REDIS_SSL_OPTIONS = _redis_ssl_options(REDIS_URL)
# Short timeouts everywhere Redis is called from a request, so an outage degrades
# to fast errors (and a fast 503 from /readyz) instead of stuck threads.
REDIS_SOCKET_TIMEOUT = 2.0

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "OPTIONS": {"socket_connect_timeout": REDIS_SOCKET_TIMEOUT, "socket_timeout": REDIS_SOCKET_TIMEOUT},
    }
}

# --- Celery (read by config/celery_app.py through the CELERY_ namespace) ---
if CELERY_TASK_TIME_LIMIT >= CELERY_VISIBILITY_TIMEOUT:
    # The Redis broker re-delivers an unacknowledged message after the visibility
    # timeout: a task allowed to run longer than that would run twice.
    raise ImproperlyConfigured(
        f"CELERY_TASK_TIME_LIMIT ({CELERY_TASK_TIME_LIMIT}s) must be below "
        f"CELERY_VISIBILITY_TIMEOUT ({CELERY_VISIBILITY_TIMEOUT}s)"
    )
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_BROKER_USE_SSL = REDIS_SSL_OPTIONS
CELERY_REDIS_BACKEND_USE_SSL = REDIS_SSL_OPTIONS
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": CELERY_VISIBILITY_TIMEOUT,
    # Sweep for messages orphaned by a killed worker a few times per visibility
    # timeout (kombu's default sweep is every 100 s).
    "unacked_restore_interval": max(1, min(10, CELERY_VISIBILITY_TIMEOUT // 4)),
    "unacked_restore_throttle": 1,
    "socket_connect_timeout": 5,
    "socket_timeout": CELERY_BROKER_SOCKET_TIMEOUT,
    "health_check_interval": 25,
    # One priority step: every message of a queue goes to the one Redis list named after the
    # queue. With kombu's default steps (0, 3, 6, 9) a task sent with priority 1-9 would land in
    # "<queue>\x06\x16<step>" instead, a list the queue-length autoscaler does not watch.
    "priority_steps": [0],
}
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_VISIBILITY_TIMEOUT}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_DEFAULT_QUEUE = CELERY_QUEUE
# Job state lives in PostgreSQL; Celery results are not read by anyone.
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = CELERY_TASK_TIME_LIMIT
CELERY_TASK_SOFT_TIME_LIMIT = max(1, CELERY_TASK_TIME_LIMIT - max(1, CELERY_TASK_TIME_LIMIT // 10))
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_WORKER_SEND_TASK_EVENTS = False
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]

# JSON lines on stdout with the request's and the task's ids (django_eks_runtime/logs.py); the
# root level is DJANGO_LOG_LEVEL.
LOGGING = {
    **logs.LOGGING,
    "loggers": {
        "django.security.DisallowedHost": {"level": "ERROR"},
    },
}
