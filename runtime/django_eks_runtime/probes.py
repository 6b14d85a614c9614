"""Liveness and readiness endpoints, answered ahead of the rest of the stack.

Kubelet probes and ALB health checks send the pod IP as the Host header over
plain HTTP. Django would reject that host (ALLOWED_HOSTS) or redirect it to
HTTPS (SECURE_SSL_REDIRECT), so these two paths are served by the first
middleware, before anything calls ``request.get_host()``.
"""

import functools
import os
from collections.abc import Callable, Mapping

import redis
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse


def check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


REDIS_SOCKET_TIMEOUT = 2.0
"""Seconds the broker check waits unless the ``REDIS_SOCKET_TIMEOUT`` setting says otherwise:
an outage answers a fast 503 instead of holding the probe past kubelet's timeout."""


def check_redis() -> None:
    """The broker (``REDIS_URL``, the setting or else the environment) answers a PING."""
    url = getattr(settings, "REDIS_URL", None) or os.environ.get("REDIS_URL", "")
    if not url:
        raise ImproperlyConfigured("REDIS_URL is unset (neither a setting nor in the environment)")
    timeout = float(getattr(settings, "REDIS_SOCKET_TIMEOUT", REDIS_SOCKET_TIMEOUT))
    client = redis.Redis.from_url(
        url,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        retry_on_timeout=False,
    )
    try:
        client.ping()
    finally:
        client.close()


DEFAULT_READINESS_CHECKS: dict[str, str] = {
    "database": "django_eks_runtime.probes.check_database",
    "redis": "django_eks_runtime.probes.check_redis",
}
"""What /readyz checks unless the ``PROBE_READINESS_CHECKS`` setting names others: a name for
the answer, and the dotted path of a function that raises when its dependency is unavailable."""


def readiness_checks() -> dict[str, Callable[[], None]]:
    paths: dict[str, str] = getattr(settings, "PROBE_READINESS_CHECKS", DEFAULT_READINESS_CHECKS)
    return _imported(tuple(paths.items()))


@functools.cache
def _imported(paths: tuple[tuple[str, str], ...]) -> dict[str, Callable[[], None]]:
    checks: dict[str, Callable[[], None]] = {}
    for name, path in paths:
        try:
            checks[name] = import_string(path)
        except ImportError as exc:
            raise ImproperlyConfigured(f"PROBE_READINESS_CHECKS[{name!r}]: {exc}") from exc
    return checks


def healthz() -> JsonResponse:
    # The process is alive: no database or Redis call, so an outage of either
    # never makes Kubernetes restart healthy web pods.
    return JsonResponse({"status": "ok"})


def readyz() -> JsonResponse:
    checks: dict[str, str] = {}
    for name, check in readiness_checks().items():
        try:
            check()
        except Exception as exc:  # noqa: BLE001 - any failure means not ready
            checks[name] = f"unavailable: {type(exc).__name__}: {exc}"[:300]
        else:
            checks[name] = "ok"
    ready = all(result == "ok" for result in checks.values())
    return JsonResponse({"status": "ok" if ready else "unavailable", "checks": checks}, status=200 if ready else 503)


HEALTH_PATH = "/healthz"
APP_HEALTH_PATH = "APP_HEALTH_PATH"
"""The path the ALB health-checks (the stack's `app.healthPath`): liveness too, as /healthz is."""


def probes(environ: Mapping[str, str] = os.environ) -> dict[str, Callable[[], JsonResponse]]:
    """The probe paths: /healthz and the app's health path (liveness), /readyz (readiness)."""
    health = environ.get(APP_HEALTH_PATH, "").strip() or HEALTH_PATH
    return {HEALTH_PATH: healthz, health: healthz, "/readyz": readyz}


PROBES = probes()


class ProbeMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        probe = PROBES.get(request.path_info)
        if probe is not None and request.method in {"GET", "HEAD"}:
            response = probe()
            # Answered before CommonMiddleware, which sets it for every other view: without it a
            # keep-alive client (an ALB health check, uWSGI's HTTP router) waits for the close.
            response["Content-Length"] = str(len(response.content))
            return response
        return self.get_response(request)
