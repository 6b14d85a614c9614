"""The web container's command for `web.server: uwsgi` (gunicorn's is `manifests.gunicorn_command`).

The flags are the service's own (service/config/web_server.py, which the benchmark and the
service tests start); a workload test holds the two equal. Keep-alive and shutdown:

- `--http`: uWSGI's HTTP router, an event loop in its own process, owns the client
  connections, so an idle keep-alive connection from the ALB holds no worker thread (with
  `--http11-socket` each idle connection pins a thread until `--socket-timeout`).
  `--http-keepalive=N` keeps idle connections N seconds: above the ALB idle timeout, as
  gunicorn's `--keep-alive` (https://uwsgi-docs.readthedocs.io/en/latest/HTTP.html).
- SIGTERM is a "brutal reload" in uWSGI 2.0 (https://uwsgi-docs.readthedocs.io/en/latest/
  Management.html); `--die-on-term` plus the master-start hook `unix_signal:15
  gracefully_kill_them_all` make it a graceful stop that lets requests in flight finish
  within `--worker-reload-mercy` (web.gracefulTimeoutSeconds), inside the pod's grace period.
- `--harakiri` (web.timeoutSeconds) kills a worker stuck in one request; the router's
  `--http-timeout` waits a little longer than that for a worker's answer.
"""

from __future__ import annotations

from stack.config.model import WebConfig

HTTP_PORT = 8000


def uwsgi_command(web: WebConfig, bind: str = f"0.0.0.0:{HTTP_PORT}") -> list[str]:
    return [
        "uwsgi", "--master", "--strict", "--need-app", "--single-interpreter",
        "--module", "config.wsgi:application",
        "--http", bind,
        f"--http-keepalive={web.keep_alive_seconds}",
        "--http-timeout", str(web.timeout_seconds + 5),
        "--processes", str(web.gunicorn_workers),
        "--threads", str(web.threads),
        "--enable-threads",
        "--harakiri", str(web.timeout_seconds),
        "--die-on-term",
        "--hook-master-start", "unix_signal:15 gracefully_kill_them_all",
        "--worker-reload-mercy", str(web.graceful_timeout_seconds),
        "--reload-mercy", str(web.graceful_timeout_seconds),
        # ALB requests with large cookies exceed uWSGI's 4 KiB default header buffer (502).
        "--buffer-size", "32768",
        "--post-buffering", "65536",
    ]  # fmt: skip
