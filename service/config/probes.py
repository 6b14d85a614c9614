"""Liveness and readiness endpoints, answered ahead of the rest of the stack.

Kubelet probes and ALB health checks send the pod IP as the Host header over
plain HTTP. Django would reject that host (ALLOWED_HOSTS) or redirect it to
HTTPS (SECURE_SSL_REDIRECT), so these two paths are served by the first
middleware, before anything calls ``request.get_host()``.
"""

from collections.abc import Callable

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse


def check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def check_redis() -> None:
    client = redis.Redis.from_url(
        settings.REDIS_URL,
        socket_connect_timeout=settings.REDIS_SOCKET_TIMEOUT,
        socket_timeout=settings.REDIS_SOCKET_TIMEOUT,
        retry_on_timeout=False,
    )
    try:
        client.ping()
    finally:
        client.close()


READINESS_CHECKS: dict[str, Callable[[], None]] = {"database": check_database, "redis": check_redis}


def healthz() -> JsonResponse:
    # The process is alive: no database or Redis call, so an outage of either
    # never makes Kubernetes restart healthy web pods.
    return JsonResponse({"status": "ok"})


def readyz() -> JsonResponse:
    checks: dict[str, str] = {}
    for name, check in READINESS_CHECKS.items():
        try:
            check()
        except Exception as exc:  # noqa: BLE001 - any failure means not ready
            checks[name] = f"unavailable: {type(exc).__name__}: {exc}"[:300]
        else:
            checks[name] = "ok"
    ready = all(result == "ok" for result in checks.values())
    return JsonResponse({"status": "ok" if ready else "unavailable", "checks": checks}, status=200 if ready else 503)


PROBES: dict[str, Callable[[], JsonResponse]] = {"/healthz": healthz, "/readyz": readyz}


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
