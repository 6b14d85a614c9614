"""The application server's command line for each supported server (the `web.server` config key).

Used by the benchmark and the tests to start the same command the cluster runs;
`infra/stack/workloads/web_server.py` renders the identical flags into the
Deployment (a test compares the two). Each command is self-contained (no config
file, no shell), so it can run as the container's exec-form command or behind a
proxy sidecar unchanged.

Keep-alive and shutdown, per server:

- gunicorn (gthread): `--keep-alive` is how long an idle connection is kept;
  SIGTERM stops accepting and lets requests in flight finish within
  `--graceful-timeout`; `--timeout` restarts a worker silent for that long.
  https://docs.gunicorn.org/en/stable/settings.html#keepalive
- uWSGI: the `--http` router (an event loop in its own process) owns the client
  connections and keeps idle ones for `--http-keepalive=N` seconds, so an idle
  keep-alive connection holds no worker thread. (With `--http11-socket` a thread
  blocks on each idle connection until `--socket-timeout`: idle ALB connections
  would starve the workers.) SIGTERM would be a "brutal reload" in uWSGI 2.0; the
  master-start hook turns it into `gracefully_kill_them_all`, which lets requests
  in flight finish within `--worker-reload-mercy`. `--harakiri` kills a worker
  stuck in one request for that long.
  https://uwsgi-docs.readthedocs.io/en/latest/HTTP.html
  https://uwsgi-docs.readthedocs.io/en/latest/Management.html
  https://uwsgi-docs.readthedocs.io/en/latest/Options.html
"""

from dataclasses import dataclass
from typing import Literal

Server = Literal["gunicorn", "uwsgi"]
SERVERS: tuple[Server, ...] = ("gunicorn", "uwsgi")
WSGI_APP = "config.wsgi:application"


@dataclass(frozen=True)
class WebServerArgs:
    server: Server = "gunicorn"
    processes: int = 1
    threads: int = 8
    keep_alive_seconds: int = 75
    graceful_timeout_seconds: int = 30
    timeout_seconds: int = 60
    bind: str = "0.0.0.0:8000"
    # gunicorn only: "gthread" in the cluster; "sync" (no keep-alive) only for measurements.
    worker_class: Literal["gthread", "sync"] = "gthread"


def web_server_command(args: WebServerArgs) -> list[str]:
    if args.server == "gunicorn":
        return gunicorn_command(args)
    if args.server == "uwsgi":
        return uwsgi_command(args)
    raise ValueError(f"unknown web server {args.server!r}; expected one of {', '.join(SERVERS)}")


def gunicorn_command(args: WebServerArgs) -> list[str]:
    command = [
        "gunicorn", "--config", "gunicorn.conf.py",
        "--workers", str(args.processes),
        "--threads", str(args.threads),
        "--keep-alive", str(args.keep_alive_seconds),
        "--graceful-timeout", str(args.graceful_timeout_seconds),
        "--timeout", str(args.timeout_seconds),
    ]
    if args.worker_class != "gthread":
        command += ["--worker-class", args.worker_class]
    if args.bind != "0.0.0.0:8000":
        command += ["--bind", args.bind]
    return [*command, "config.wsgi"]


def uwsgi_command(args: WebServerArgs) -> list[str]:
    command = [
        "uwsgi", "--master", "--strict", "--need-app", "--single-interpreter",
        "--module", WSGI_APP,
        "--http", args.bind,
        f"--http-keepalive={args.keep_alive_seconds}",
        # The router's wait for a worker's answer; the request's own limit is harakiri.
        "--http-timeout", str(args.timeout_seconds + 5),
        "--processes", str(args.processes),
        "--threads", str(args.threads),
        "--enable-threads",
        "--harakiri", str(args.timeout_seconds),
        "--die-on-term",
        "--hook-master-start", "unix_signal:15 gracefully_kill_them_all",
        "--worker-reload-mercy", str(args.graceful_timeout_seconds),
        "--reload-mercy", str(args.graceful_timeout_seconds),
        # ALB requests with large cookies exceed uWSGI's 4 KiB default header buffer (502).
        "--buffer-size", "32768",
        "--post-buffering", "65536",
    ]
    return command
