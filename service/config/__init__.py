"""Project configuration: settings, URLs, WSGI and the Celery app.

``celery --app config`` looks up ``config.app``. It is loaded lazily so that
``python -m config.heartbeat`` (the worker's liveness probe) stays cheap.
"""


def __getattr__(name: str) -> object:
    if name in {"app", "celery_app"}:
        from .celery_app import app

        return app
    raise AttributeError(f"module 'config' has no attribute {name!r}")
