"""The web pod's buffering proxy: an nginx sidecar that owns port 8000 and holds slow clients.

Why: an application server thread (gunicorn gthread, uWSGI worker) is taken by a connection
from the moment its request starts arriving. Eight clients trickling headers or a body at one
byte per second held all eight threads, and everything else on port 8000 (the API, the ALB
health check) waited. The ALB passes slow uploads through. nginx reads each request whole,
headers and body (`proxy_request_buffering on`; bodies above `client_body_buffer_size` spill
to a temp file in an emptyDir), before it opens a connection to the app, so the app's threads
only ever see complete requests. service/README.md "Slow clients" has the measurements.

Keep-alive and shutdown: nginx keeps idle client connections `keepalive_timeout` seconds,
above the ALB idle timeout (the same rule as the app servers' keep-alive, else 502s). On
SIGQUIT (`nginx -s quit`) it stops accepting and finishes requests in flight. The pod's preStop
hook sleeps while the target deregisters, then quits nginx, which waits for its requests (the
app keeps serving them), so the app's own SIGTERM comes after the proxy is drained or the grace
period's budget for it is spent.
https://nginx.org/en/docs/http/ngx_http_proxy_module.html#proxy_request_buffering
https://nginx.org/en/docs/http/ngx_http_core_module.html#client_body_buffer_size
https://nginx.org/en/docs/control.html

The same text runs in the service tests (Debian's nginx) and in the cluster (the official
`nginx:<version>-alpine` image as uid 101 under Pod Security restricted, read-only root fs):
only directives both accept, every writable path under one temp directory.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from stack.config.model import WebConfig
from stack.model.proxy import CPU_MILLICORES, MEMORY_MIB, SIZING, ProxySizing

PROXY = "proxy"
CONFIG_MAP = "web-proxy"
# The official image (Docker's, as ECR Public mirrors it), through the stack's pull-through
# cache (stack.platform.registry), pinned by the digest of its multi-arch index: amd64 and arm64
# (Graviton pools) nodes each pull their own platform's image of that one index. It runs as its
# `nginx` user (uid/gid 101), with our command (the image's entrypoint scripts, which rewrite
# /etc/nginx, never run). Digest: SOURCES.md "nginx".
PROXY_UPSTREAM_REPOSITORY = "docker/library/nginx"
PROXY_TAG = "1.28.0-alpine"
PROXY_DIGEST = "sha256:30f1c0d78e0ad60901648be663a710bdadf19e4c10ac6782c235200619158284"


def proxy_image(registry_host: str, cache_prefix: str) -> str:
    """`<registry>/<cache prefix>/docker/library/nginx:<tag>@<digest>`: the digest decides."""
    return f"{registry_host}/{cache_prefix}/{PROXY_UPSTREAM_REPOSITORY}:{PROXY_TAG}@{PROXY_DIGEST}"
PROXY_UID = 101
# The app behind the proxy listens on loopback only: nothing outside the pod reaches it.
APP_PORT = 8080
HTTP_PORT = 8000
CONFIG_DIR = "/etc/nginx-proxy"
# The proxy's own emptyDir: request bodies spill here, and the pid file lives here.
TEMP_DIR = "/tmp"
# The largest upload the app accepts (JOBS_MAX_UPLOAD_BYTES, set in the app's ConfigMap from here
# so the app and the proxy cannot disagree).
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
# Concurrent full-size uploads the emptyDir can hold while they trickle in: one per request the
# proxy lets past its headers (limit_conn), the rest are answered 503 before their body is read.
BUFFERED_UPLOADS = SIZING.requests
# multipart framing around the largest accepted image: boundaries, part headers, the field name.
MULTIPART_OVERHEAD_BYTES = 64 * 1024
# limit_conn's shared memory: one key ($server_name), the zone's minimum of 8 pages is ample.
LIMIT_CONN_ZONE = "32k"
# How long a client refused 503 `busy` may go on sending the body nobody reads: the refused
# request's location's lingering_time bounds it (nginx 1.28.0 src/http/ngx_http_request.c:2795-2806,
# https://nginx.org/en/docs/http/ngx_http_core_module.html#lingering_time).
REFUSED_LINGER_SECONDS = 5
# The proxy's one server: its name is the key of the request limit, which counts all clients together.
SERVER_NAME = "proxy"
# Where nginx's own answers live: internal locations, so clients cannot ask for them directly.
ERROR_PREFIX = "/_proxy/errors/"


@dataclass(frozen=True)
class ProxyError:
    """An answer nginx makes itself: for `statuses`, `status` with the app's error shape."""

    statuses: tuple[int, ...]
    status: int
    code: str
    detail: str
    retry_after_seconds: int = 0


# Each status nginx itself answers with (https://nginx.org/en/docs/http/ngx_http_core_module.html#error_page);
# 494 is nginx's "request header too large", a 400 to the client.
ERRORS = (
    ProxyError((400,), 400, "bad_request", "malformed HTTP request"),
    ProxyError((494,), 400, "header_too_large", "a request header line or the request headers are too large"),
    ProxyError((403,), 403, "forbidden", "this request is not allowed"),
    ProxyError((404,), 404, "not_found", "no route for this path"),
    ProxyError((405,), 405, "method_not_allowed", "this method is not allowed"),
    ProxyError((408,), 408, "request_timeout", "the request did not arrive in time"),
    ProxyError((411,), 411, "length_required", "a request body needs Content-Length or chunked encoding"),
    ProxyError((413,), 413, "too_large", "request body too large"),
    ProxyError((414,), 414, "uri_too_long", "the request URI is too long"),
    ProxyError((500,), 500, "server_error", "internal server error"),
    ProxyError((501,), 501, "not_implemented", "this Transfer-Encoding or method is not supported"),
    ProxyError((502, 504), 503, "unavailable", "the application is not answering"),
    ProxyError((503,), 503, "busy", "the server holds as many requests as it can; retry shortly",
               retry_after_seconds=1),
    ProxyError((505,), 505, "http_version_not_supported", "this HTTP version is not supported"),
)


@dataclass(frozen=True)
class ProxyArgs:
    listen: str  # "8000" in the cluster; "127.0.0.1:<port>" in the tests
    upstream: str  # "127.0.0.1:8080"
    max_upload_bytes: int  # the app's JOBS_MAX_UPLOAD_BYTES
    keep_alive_seconds: int  # above the ALB idle timeout
    app_timeout_seconds: int  # the app's request timeout; nginx waits a little longer
    # On `nginx -s quit`, requests still open this long after are closed.
    shutdown_seconds: int = 30
    temp_dir: str = TEMP_DIR
    # Connections, requests and buffers; the container's memory limit is this one's memory_mib.
    sizing: ProxySizing = SIZING


def client_max_body_bytes(max_upload_bytes: int) -> int:
    """The largest body nginx forwards: the app's upload limit plus multipart framing.

    Above the app's limit, so the app (not nginx) answers an image a little too large with its
    own 413 JSON; far above it, nginx answers 413 itself (also JSON, see `nginx_conf`).
    """
    return max_upload_bytes + MULTIPART_OVERHEAD_BYTES


def nginx_conf(args: ProxyArgs) -> str:
    if args.max_upload_bytes <= 0:
        raise ValueError(f"max_upload_bytes must be positive, got {args.max_upload_bytes}")
    if args.temp_dir == "/" or not args.temp_dir.startswith("/"):
        raise ValueError(f"temp_dir must be an absolute directory other than /, got {args.temp_dir!r}")
    temp = args.temp_dir.rstrip("/")
    size = args.sizing
    error_pages = "\n".join(
        f"        error_page {' '.join(map(str, e.statuses))} ={e.status} {ERROR_PREFIX}{e.code}.json;" for e in ERRORS
    )
    error_locations = "\n".join(_error_location(e) for e in ERRORS)
    return f"""\
worker_processes 1;
pid {temp}/nginx.pid;
error_log stderr warn;
worker_shutdown_timeout {args.shutdown_seconds}s;

events {{
    worker_connections {size.worker_connections};
}}

http {{
    access_log off;
    server_tokens off;
    client_body_temp_path {temp}/client_body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;

    # Idle client connections (the ALB's) outlive the ALB's idle timeout.
    keepalive_timeout {args.keep_alive_seconds}s;
    keepalive_requests 10000;
    client_max_body_size {client_max_body_bytes(args.max_upload_bytes)};
    # Every buffer and count below comes from one ProxySizing (stack/model/proxy.py), and so does
    # the container's memory limit: no number of clients can push nginx past it.
    client_header_buffer_size {size.header_buffer_bytes};
    large_client_header_buffers {size.large_header_buffers} {size.large_header_buffer_bytes};
    client_body_buffer_size {size.body_buffer_bytes};
    proxy_buffer_size {size.response_header_buffer_bytes};
    proxy_buffers {size.response_buffers} {size.response_buffer_bytes};
    # Requests past their headers, all clients together; the excess is answered 503 JSON.
    # (A key nginx skips when empty: $server_name with the server's name set below.)
    limit_conn_zone $server_name zone=requests:{LIMIT_CONN_ZONE};
    limit_conn_log_level warn;

    upstream app {{
        server {args.upstream};
        keepalive {size.upstream_keepalive};
    }}

    server {{
        listen {args.listen};
        server_name {SERVER_NAME};
        # Every answer nginx makes itself is JSON, like the app's (whose own pass through as they
        # are): to a URI, never a named location, which needs the request's URI and a request
        # whose line did not parse has none (500 "empty URI in redirect to named location",
        # src/http/ngx_http_core_module.c:2585-2591 of nginx 1.28.0).
{error_pages}

        location / {{
            limit_conn requests {size.requests};
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            # The whole request (headers and body) is read before the app sees it.
            proxy_request_buffering on;
            proxy_buffering on;
            proxy_read_timeout {args.app_timeout_seconds + 5}s;
            proxy_send_timeout {args.app_timeout_seconds + 5}s;
            proxy_intercept_errors off;
        }}

{error_locations}
    }}
}}
"""


def _error_location(error: ProxyError) -> str:
    body = json.dumps({"error": error.code, "detail": error.detail})
    if "'" in body:
        raise ValueError(f"the {error.code} answer cannot hold a single quote (nginx's string quote): {body}")
    retry = ""
    if error.retry_after_seconds:
        # A refused client's body is read and thrown away for at most lingering_time (30 s by
        # default) before its connection is closed; a short one frees the slot for the next client.
        retry = (f"\n            add_header Retry-After {error.retry_after_seconds} always;"
                 f"\n            lingering_time {REFUSED_LINGER_SECONDS}s;")
    return f"""\
        location = {ERROR_PREFIX}{error.code}.json {{
            internal;
            default_type application/json;{retry}
            return {error.status} '{body}';
        }}
"""


def proxy_command(config_path: str = f"{CONFIG_DIR}/nginx.conf") -> list[str]:
    return ["nginx", "-c", config_path, "-g", "daemon off;"]


# --- the web pod's side ------------------------------------------------------------------


def proxy_args(web: WebConfig) -> ProxyArgs:
    return ProxyArgs(
        listen=str(HTTP_PORT),
        upstream=app_bind(),
        max_upload_bytes=MAX_UPLOAD_BYTES,
        # The proxy now holds the ALB's connections: the same keep-alive rule (web.keepAliveSeconds
        # above the ALB idle timeout, checked by the config) applies to it.
        keep_alive_seconds=web.keep_alive_seconds,
        app_timeout_seconds=web.timeout_seconds,
        # Bound the drain on `nginx -s quit`: a client still trickling an upload cannot hold the pod.
        shutdown_seconds=drain_seconds(web),
    )


def app_bind() -> str:
    return f"127.0.0.1:{APP_PORT}"


def proxy_config_map(web: WebConfig, *, namespace: str, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": CONFIG_MAP, "namespace": namespace, "labels": labels},
        "data": {"nginx.conf": nginx_conf(proxy_args(web))},
    }


def config_checksum(web: WebConfig) -> str:
    """Changes with the proxy's configuration, so a pod template annotation rolls the pods."""
    return hashlib.sha256(nginx_conf(proxy_args(web)).encode()).hexdigest()[:16]


def drain_seconds(web: WebConfig) -> int:
    """How long the proxy may take on `nginx -s quit` to finish the requests it holds."""
    return web.graceful_timeout_seconds


def pre_stop_command(web: WebConfig) -> list[str]:
    # Serve while the ALB deregisters the pod, then stop accepting and finish what is in flight;
    # the hook returns only when nginx has exited (its pid file is gone), else the kubelet's
    # SIGTERM (nginx's fast shutdown) would cut the requests short.
    return [
        "/bin/sh", "-c",
        f"sleep {web.pre_stop_seconds}; nginx -s quit -c {CONFIG_DIR}/nginx.conf; "
        f"while [ -e {TEMP_DIR}/nginx.pid ]; do sleep 1; done",
    ]  # fmt: skip


def proxy_volumes() -> list[dict[str, Any]]:
    body_spill_mib = BUFFERED_UPLOADS * (MAX_UPLOAD_BYTES + MULTIPART_OVERHEAD_BYTES) // (1024 * 1024)
    return [
        {"name": "proxy-config", "configMap": {"name": CONFIG_MAP}},
        {"name": "proxy-tmp", "emptyDir": {"sizeLimit": f"{body_spill_mib}Mi"}},
    ]


def proxy_container(web: WebConfig, security_context: dict[str, Any], image: str) -> dict[str, Any]:
    """The nginx sidecar: port 8000 (named `http`, which the Service and the target group use).

    `image` is `proxy_image(...)` of the stack's registry.
    """
    tcp = {"tcpSocket": {"port": "http"}, "timeoutSeconds": 2}
    return {
        "name": PROXY,
        "image": image,
        "command": proxy_command(),
        "ports": [{"name": "http", "containerPort": HTTP_PORT, "protocol": "TCP"}],
        "resources": {
            "requests": {"cpu": f"{CPU_MILLICORES}m", "memory": f"{MEMORY_MIB}Mi"},
            "limits": {"memory": f"{MEMORY_MIB}Mi"},
        },
        # The image's nginx user; the pod's fsGroup makes the emptyDir writable for it.
        "securityContext": {**security_context, "runAsUser": PROXY_UID, "runAsGroup": PROXY_UID},
        "volumeMounts": [
            {"name": "proxy-config", "mountPath": CONFIG_DIR, "readOnly": True},
            {"name": "proxy-tmp", "mountPath": TEMP_DIR},
        ],
        # Liveness only: the proxy answers TCP whatever the app does; the ALB's health check
        # (through the proxy to the app's /healthz) judges the whole path.
        "startupProbe": {**tcp, "periodSeconds": 1, "failureThreshold": 30},
        "livenessProbe": {**tcp, "periodSeconds": 10, "failureThreshold": 3},
        "lifecycle": {"preStop": {"exec": {"command": pre_stop_command(web)}}},
    }
