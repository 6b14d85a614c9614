"""The names the app's Kubernetes objects share with the platform (IAM pod access, add-on roles)."""

NAMESPACE = "app"
"""The namespace every app object lives in."""

WEB = "web"
WORKER = "worker"
MIGRATE = "migrate"
BEAT = "beat"
CRON = "cron"

DEFAULT_QUEUE = "jobs"
"""The demo's one Celery queue: the web sends jobs to it, and the single `worker` consumes it."""
APP_DEFAULT_QUEUE = "celery"
"""An app's single `worker` consumes Celery's default queue, where `delay()` sends a task no
route names (task_default_queue, celery 5 celery/app/defaults.py:275)."""
