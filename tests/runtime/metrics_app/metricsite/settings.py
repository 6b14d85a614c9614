"""A small Django + Celery app on the runtime only, for the metrics and logs tests: no database
tables, Redis as the broker (REDIS_URL), the runtime's middleware and logging as an app adds them."""

import os

from django_eks_runtime import logs

SECRET_KEY = "metrics-tests-only"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
REDIS_URL = os.environ["REDIS_URL"]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
PROBE_READINESS_CHECKS = {"redis": "django_eks_runtime.probes.check_redis"}
INSTALLED_APPS: list[str] = []
MIDDLEWARE = [
    "django_eks_runtime.probes.ProbeMiddleware",
    "django_eks_runtime.metrics.MetricsMiddleware",
    "django.middleware.common.CommonMiddleware",
]
ROOT_URLCONF = "metricsite.urls"
USE_TZ = True
LOGGING = logs.LOGGING

CELERY_BROKER_URL = REDIS_URL
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_DEFAULT_QUEUE = "work"
CELERY_TASK_ROUTES = {"held": {"queue": "held"}, "tick": {"queue": "ticks"}}
CELERY_BEAT_SCHEDULE = {"tick": {"task": "tick", "schedule": 0.5}}
