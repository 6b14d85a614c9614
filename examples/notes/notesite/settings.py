"""Settings from the environment the platform gives every app container (docs/app-contract.md)."""

import os
from urllib.parse import parse_qsl, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured
from django_eks_runtime import logs


def env(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, "").strip()
    if value:
        return value
    if default is None:
        raise ImproperlyConfigured(f"{name} is unset")
    return default


def database(url: str) -> dict[str, object]:
    """DATABASE_URL (postgres://user:password@host:port/name?sslmode=...) as Django's DATABASES entry."""
    parts = urlsplit(url)
    if parts.scheme not in {"postgres", "postgresql"}:
        raise ImproperlyConfigured(f"DATABASE_URL: expected postgres://, got {parts.scheme}://")
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parts.path.lstrip("/")),
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or ""),
        "OPTIONS": {"connect_timeout": 3, **dict(parse_qsl(parts.query))},
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
    }


SECRET_KEY = env("DJANGO_SECRET_KEY", "insecure-local-only")
DEBUG = env("DJANGO_DEBUG", "false") == "true"
ALLOWED_HOSTS = env("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1").split(",")
CSRF_TRUSTED_ORIGINS = [origin for origin in env("DJANGO_CSRF_TRUSTED_ORIGINS", "").split(",") if origin]
SECURE_SSL_REDIRECT = env("DJANGO_SECURE_SSL_REDIRECT", "false") == "true"
REDIS_URL = env("REDIS_URL")
DATABASES = {"default": database(env("DATABASE_URL"))}

INSTALLED_APPS = ["notes"]
MIDDLEWARE = [
    # First: kubelet and ALB probes (Host: <pod IP>, plain HTTP) before ALLOWED_HOSTS and the redirect.
    "django_eks_runtime.probes.ProbeMiddleware",
    # Second: requests (not the probes) counted and timed by route, each with its request id.
    "django_eks_runtime.metrics.MetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
]
ROOT_URLCONF = "notesite.urls"
CSRF_FAILURE_VIEW = "django_eks_runtime.errors.csrf_failure"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
# JSON lines on stdout, with the request's and the task's ids; the level is DJANGO_LOG_LEVEL.
LOGGING = logs.LOGGING

# Celery: two queues, a task on each, and a periodic task (beat).
CELERY_BROKER_URL = REDIS_URL
CELERY_TASK_ACKS_LATE = True  # a task whose worker died runs again
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_DEFAULT_QUEUE = "text"
CELERY_TASK_ROUTES = {
    "notes.tasks.count_words": {"queue": "text"},
    "notes.tasks.tick": {"queue": "text"},
    "notes.tasks.archive": {"queue": "archive"},
}
NOTES_TICK_SECONDS = float(env("NOTES_TICK_SECONDS", "60"))
CELERY_BEAT_SCHEDULE = {"tick": {"task": "notes.tasks.tick", "schedule": NOTES_TICK_SECONDS}}
