"""/healthz and /readyz on a port of their own, served by a thread outside the request pool.

When slow clients or slow requests hold every gunicorn thread, probes sent to the
application port queue behind them: kubelet then restarts a pod that is only busy,
and marks it unready exactly when it is loaded. This server answers from its own
thread, so a probe's latency does not depend on the request threads. It starts from
``django_eks_runtime.wsgi`` when ``PROBE_BIND`` is set, in each worker process of gunicorn, uWSGI or granian
(after the fork under uWSGI's master); each binds the port with SO_REUSEPORT and the
kernel spreads the probes over them.

It also serves ``/metrics`` (metrics.py): any web process answers for all of the pod's, from the
multiprocess directory, so the scraper reaching one of them through SO_REUSEPORT sees every
process's counts.
"""

import json
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from django.db import connection

from django_eks_runtime import metrics, probes

METRICS_PATH = "/metrics"

logger = logging.getLogger(__name__)


class ProbeHandler(BaseHTTPRequestHandler):
    server_version = "probes"

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        path = self.path.split("?", 1)[0]
        if path == METRICS_PATH:
            serve_metrics(self, metrics.component("web"))
            return
        probe = probes.PROBES.get(path)
        if probe is None:
            served = ", ".join([*probes.PROBES, METRICS_PATH])
            self._answer(404, {"error": "not_found", "detail": f"this port serves only {served}"})
            return
        try:
            response = probe()
        finally:
            # Each probe runs in a short-lived thread with its own database connection.
            connection.close()
        self._answer(response.status_code, json.loads(response.content))

    do_HEAD = do_GET  # noqa: N815

    def _answer(self, status: int, body: dict[str, object]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        # Probes every few seconds would drown the access log.
        pass


class ProbeServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def server_bind(self) -> None:
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        super().server_bind()


def serve_metrics(handler: BaseHTTPRequestHandler, component: str, collectors: tuple[object, ...] = ()) -> None:
    """Answer a GET or HEAD of /metrics with the pod's metrics (metrics.exposition)."""
    data = metrics.exposition(component, collectors)
    handler.send_response(200)
    handler.send_header("Content-Type", metrics.CONTENT_TYPE)
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(data)


def start(port: int, host: str = "0.0.0.0") -> ProbeServer:
    server = ProbeServer((host, port), ProbeHandler)
    threading.Thread(target=server.serve_forever, name="probe-server", daemon=True).start()
    logger.info("probes on %s:%d (/healthz, /readyz, /metrics)", host, port)
    return server
