"""The Celery app (APP_CELERY=notesite.celery:app), configured from the Django settings."""

import os

from celery import Celery
from django_eks_runtime import worker

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "notesite.settings")

app = Celery("notesite")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# The liveness heartbeat the worker's probe reads (python -m django_eks_runtime.heartbeat).
worker.install(app)
