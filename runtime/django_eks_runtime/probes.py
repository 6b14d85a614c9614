"""Liveness and readiness endpoints, answered ahead of the rest of the stack.

Kubelet probes and ALB health checks send the pod IP as the Host header over
plain HTTP. Django would reject that host (ALLOWED_HOSTS) or redirect it to
HTTPS (SECURE_SSL_REDIRECT), so these two paths are served by the first
middleware, before anything calls ``request.get_host()``.
"""

import threading
import time
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


FILES_CHECK_SECONDS = 10.0
"""How long a process reuses the outcome of its last bucket check: kubelet probes every web
process every few seconds, and each check is an S3 request. An outage or its end shows
within this many seconds."""

_files_checked: tuple[float, str, str | None] | None = None
_files_lock = threading.Lock()


def check_files() -> None:
    """The uploads and results storage answers: HeadBucket on S3, a writable directory locally.

    Fails naming the bucket, so a missing bucket or refused credentials keep the pod out of the
    Service instead of failing its first upload.
    """
    from jobs.files import FileStoreUnavailable, file_store_check, file_store_name

    global _files_checked
    store = file_store_name()
    # One check at a time per process; the others wait for it and share its outcome.
    with _files_lock:
        now = time.monotonic()
        if _files_checked is None or _files_checked[1] != store or now - _files_checked[0] >= FILES_CHECK_SECONDS:
            try:
                file_store_check()
            except FileStoreUnavailable as exc:
                _files_checked = (now, store, str(exc))
            else:
                _files_checked = (now, store, None)
        problem = _files_checked[2]
    if problem is not None:
        raise FileStoreUnavailable(problem)


READINESS_CHECKS: dict[str, Callable[[], None]] = {
    "database": check_database,
    "redis": check_redis,
    "files": check_files,
}


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
