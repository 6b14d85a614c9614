"""JSON log lines on stdout for the web, the worker and beat: ``LOGGING = django_eks_runtime.logs.LOGGING``.

Each line is one JSON object (python-json-logger) with ``timestamp``, ``level``, ``logger`` and
``message``, plus ``request_id`` while a request is served (metrics.MetricsMiddleware sets it:
the response's X-Request-Id) and ``task_id`` and ``task_name`` while a Celery task runs; an
exception's traceback is the ``exc_info`` field. CloudWatch Logs Insights reads the fields of a
JSON line without a parse step.

The worker and beat keep this configuration: ``worker.install(app)`` connects Celery's
``setup_logging`` signal, and Celery configures no logging of its own when any receiver is
connected to it (celery 5.6.3, celery/app/log.py lines 98-103: ``if not receivers:``), so it
neither hijacks the root logger nor gives the task loggers its own plain-text stderr handler.
Under uWSGI, Python's ``sys.stdout`` writes to file descriptor 2 (https://github.com/unbit/uwsgi/issues/1601):
the lines are on the container's stderr, which the cluster's log collection reads as well.

``DJANGO_LOG_LEVEL`` (the platform's variable, default INFO) is the root level; the worker's and beat's ``--loglevel``
(``WORKER_LOG_LEVEL``) overrides it in those processes, as Celery's own setup did.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from django_eks_runtime.metrics import REQUEST_ID, REQUEST_ID_ATTRIBUTE

FORMAT = "%(levelname)s %(name)s %(message)s"
RENAMED = {"levelname": "level", "name": "logger"}


class ContextFilter(logging.Filter):
    """Adds ``request_id`` (the request being served) and ``task_id``/``task_name`` (the Celery
    task being run) to each record, when there is one."""

    def filter(self, record: logging.LogRecord) -> bool:
        # Django logs a 4xx/5xx answer after the middleware returned (BaseHandler.get_response,
        # ``log_response``), with the request on the record: its id is on the request.
        request_id = REQUEST_ID.get() or getattr(getattr(record, "request", None), REQUEST_ID_ATTRIBUTE, None)
        if request_id is not None:
            record.request_id = request_id
        task = _current_task()
        if task is not None:
            record.task_id = task.request.id
            record.task_name = task.name
        return True


def _current_task() -> Any:
    # Only where Celery runs already: the web's log lines do not import it.
    if "celery" not in sys.modules:
        return None
    from celery import current_task

    task = current_task._get_current_object()
    return task if task is not None and getattr(task.request, "id", None) else None


LEVEL_VARIABLE = "DJANGO_LOG_LEVEL"
LEVEL = os.environ.get(LEVEL_VARIABLE, "").strip().upper() or "INFO"

LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": ContextFilter}},
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": FORMAT,
            "rename_fields": RENAMED,
            # "timestamp": the record's time, ISO 8601 in UTC.
            "timestamp": True,
            # Text as written (a message with "é" or "—" stays readable and searchable).
            "json_ensure_ascii": False,
        },
    },
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": "json",
            "filters": ["context"],
        },
    },
    "root": {"handlers": ["stdout"], "level": LEVEL},
}
"""Django's ``LOGGING``: an app that wants more (its own loggers' levels) copies and extends it."""


def configure_celery_logging(loglevel: int | str | None = None, **kwargs: Any) -> None:
    """Celery's ``setup_logging`` receiver: Django's own ``LOGGING`` for the worker and beat."""
    from django.conf import settings
    from django.utils.log import configure_logging

    configure_logging(settings.LOGGING_CONFIG, settings.LOGGING)
    if loglevel:
        logging.getLogger().setLevel(loglevel)
