"""How every process of the image starts: ``python -m config.launch <process> [extra args]``.

One command per process, for the Dockerfile, the pods, ``make dev``, the benchmark and the
tests alike. Each reads its settings from environment variables (the table below and
service/README.md); a variable that is unset or empty takes the default, a value that does not
parse stops the launcher before anything starts, with a message naming the variable. Extra
arguments after the process name are appended to the server's own command line (the tests
give Celery a ``--hostname``, the reconciler an ``--every``).

The launcher replaces itself with the server (``os.execvp``): no shell and no parent in
between, so the kubelet's SIGTERM reaches gunicorn's, uWSGI's, granian's or Celery's main process and
starts its graceful shutdown. Run it from the service directory (the image's /app), as the
commands refer to ``manage.py`` and ``gunicorn.conf.py`` there.

Keep-alive and shutdown, per web server (``WEB_SERVER``):

- gunicorn (gthread): ``--keep-alive`` is how long an idle connection is kept; SIGTERM stops
  accepting and lets requests in flight finish within ``--graceful-timeout``; ``--timeout``
  restarts a worker silent for that long. The sync worker ignores keep-alive (measurements only).
  https://docs.gunicorn.org/en/stable/settings.html#keepalive
- uWSGI: the ``--http`` router (an event loop in its own process) owns the client connections
  and keeps idle ones for ``--http-keepalive=N`` seconds, so an idle keep-alive connection holds
  no worker thread (with ``--http11-socket`` each idle connection pins a thread until
  ``--socket-timeout``: idle ALB connections would starve the workers). SIGTERM would be a
  "brutal reload" in uWSGI 2.0; the master-start hook turns it into
  ``gracefully_kill_them_all``, which lets requests in flight finish within
  ``--worker-reload-mercy``. ``--harakiri`` kills a worker stuck in one request for that long;
  the router's ``--http-timeout`` waits a little longer than that for a worker's answer.
  https://uwsgi-docs.readthedocs.io/en/latest/HTTP.html
  https://uwsgi-docs.readthedocs.io/en/latest/Management.html
- granian (``--interface wsgi``): its Rust runtime owns the client connections, so an idle
  keep-alive connection holds no ``--blocking-threads`` thread (the request threads, one pool per
  worker process). HTTP/1 keep-alive has an on/off switch only; what closes an idle connection is
  ``--http1-header-read-timeout`` (milliseconds), which also runs while the connection waits for
  its next request (tests/service/test_processes.py measures it). Its largest value is 60 s, so
  granian's keep-alive is ``WEB_KEEP_ALIVE_SECONDS`` up to 60 (unset: 60; above: refused), and
  the ALB's idle timeout must stay below it (the stack's config rules say so). SIGTERM to the main process sends SIGTERM to
  each worker, which stops accepting and finishes requests in flight; ``--workers-kill-timeout``
  kills a worker still busy after ``WEB_GRACEFUL_TIMEOUT_SECONDS`` (granian/server/common.py,
  ``_stop_workers``). granian has no per-request time limit: ``WEB_TIMEOUT_SECONDS`` has nothing
  to set either (the ALB answers 504 at its idle timeout; the thread runs on).
  ``--respawn-failed-workers`` replaces a worker that died, as gunicorn's arbiter and uWSGI's
  master do. ``granian --help`` of 2.8; https://github.com/emmett-framework/granian

The Celery worker: prefetch 1 and ``-O fair``, so a long CPU-bound task never holds a second
one hostage. No worker heartbeat events, gossip or mingle: nothing here reads them (job state
lives in PostgreSQL, the autoscaler watches the queue's length), and each is one more broker
conversation held from the worker's event loop; the event heartbeat in particular retries its
publish without end while Redis hangs, which would freeze the liveness heartbeat
(``config.celery_app.Heartbeat``) for as long as Redis does.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

SERVERS = ("granian", "gunicorn", "uwsgi")
"""The application servers ``WEB_SERVER`` picks from; the first is the image's default."""
WSGI_APP = "config.wsgi:application"
BENCH_RESULTS_FILE = "/tmp/bench-results.json"


class SettingError(ValueError):
    """A launcher variable whose value does not parse; the message names the variable."""


@dataclass(frozen=True)
class Setting:
    name: str
    default: str
    help: str
    choices: tuple[str, ...] = ()
    minimum: int | None = None

    def text(self, environ: Mapping[str, str]) -> str:
        value = environ.get(self.name, "").strip() or self.default
        if self.choices and value not in self.choices:
            raise SettingError(f"{self.name}={value!r}: expected one of {', '.join(self.choices)}")
        return value

    def integer(self, environ: Mapping[str, str]) -> int:
        value = self.text(environ)
        try:
            number = int(value)
        except ValueError:
            raise SettingError(f"{self.name}={value!r}: expected a whole number") from None
        if self.minimum is not None and number < self.minimum:
            raise SettingError(f"{self.name}={value!r}: expected at least {self.minimum}")
        return number

    def flag(self, environ: Mapping[str, str]) -> bool:
        value = self.text(environ).lower()
        if value in ("1", "true", "yes"):
            return True
        if value in ("0", "false", "no"):
            return False
        raise SettingError(f"{self.name}={value!r}: expected true or false")


# --- the contract: every variable a launcher reads, with the image's default ----------------

# granian: the least CPU per request of the maintained servers (docs/web-server.md).
WEB_SERVER = Setting("WEB_SERVER", SERVERS[0], "the application server", choices=SERVERS)
WEB_BIND = Setting("WEB_BIND", "0.0.0.0:8000", "host:port the server listens on")
WEB_PROCESSES = Setting("WEB_PROCESSES", "1", "worker processes", minimum=1)
WEB_THREADS = Setting("WEB_THREADS", "8", "request threads per process", minimum=1)
# Longer than the ALB's 60 s idle timeout: if the server closed idle connections first, the
# ALB could send a request on a closing connection and answer 502.
WEB_KEEP_ALIVE_SECONDS = Setting(
    "WEB_KEEP_ALIVE_SECONDS", "75", "idle keep-alive connections are kept this long (above the ALB's idle timeout)",
    minimum=1)
WEB_TIMEOUT_SECONDS = Setting(
    "WEB_TIMEOUT_SECONDS", "60", "a request (uWSGI's harakiri) or a silent worker (gunicorn) is killed after this",
    minimum=1)
WEB_GRACEFUL_TIMEOUT_SECONDS = Setting(
    "WEB_GRACEFUL_TIMEOUT_SECONDS", "30", "after SIGTERM, requests in flight may finish within this", minimum=0)
WEB_BUFFER_SIZE = Setting(
    "WEB_BUFFER_SIZE", "32768", "uWSGI: bytes for a request's headers (ALB cookies exceed the 4 KiB default)",
    minimum=4096)
WEB_POST_BUFFERING = Setting(
    "WEB_POST_BUFFERING", "65536", "uWSGI: request bodies larger than this are buffered to disk", minimum=0)
WEB_WORKER_CLASS = Setting(
    "WEB_WORKER_CLASS", "gthread", "gunicorn: gthread (keep-alive); sync only for measurements",
    choices=("gthread", "sync"))
WORKER_CONCURRENCY = Setting("WORKER_CONCURRENCY", "1", "Celery worker processes", minimum=1)
WORKER_PREFETCH_MULTIPLIER = Setting(
    "WORKER_PREFETCH_MULTIPLIER", "1", "tasks each worker process reserves ahead", minimum=1)
WORKER_LOG_LEVEL = Setting(
    "WORKER_LOG_LEVEL", "INFO", "Celery's log level", choices=("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"))
CREDENTIALS_TIMEOUT_SECONDS = Setting(
    "CREDENTIALS_TIMEOUT_SECONDS", "120", "how long wait-for-credentials waits for Pod Identity", minimum=1)
BENCH_FAST = Setting("BENCH_FAST", "false", "the benchmark's short run")
BENCH_RESULTS_MARKER = Setting(
    "BENCH_RESULTS_MARKER", "", "when set: the run's output to stderr, then this line and the results JSON on stdout")

SETTINGS: tuple[Setting, ...] = (
    WEB_SERVER, WEB_BIND, WEB_PROCESSES, WEB_THREADS, WEB_KEEP_ALIVE_SECONDS, WEB_TIMEOUT_SECONDS,
    WEB_GRACEFUL_TIMEOUT_SECONDS, WEB_BUFFER_SIZE, WEB_POST_BUFFERING, WEB_WORKER_CLASS,
    WORKER_CONCURRENCY, WORKER_PREFETCH_MULTIPLIER, WORKER_LOG_LEVEL,
    CREDENTIALS_TIMEOUT_SECONDS, BENCH_FAST, BENCH_RESULTS_MARKER,
)


def _program(name: str) -> str:
    """A console script of this interpreter's environment, else the name (found on PATH)."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


# --- the commands -------------------------------------------------------------------------


def web_command(environ: Mapping[str, str]) -> list[str]:
    """The application server's command line for ``WEB_SERVER``."""
    server = WEB_SERVER.text(environ)
    if server == "gunicorn":
        return gunicorn_command(environ)
    if server == "granian":
        return granian_command(environ)
    return uwsgi_command(environ)


def gunicorn_command(environ: Mapping[str, str]) -> list[str]:
    command = [
        _program("gunicorn"), "--config", "gunicorn.conf.py",
        "--bind", WEB_BIND.text(environ),
        "--workers", str(WEB_PROCESSES.integer(environ)),
        "--threads", str(WEB_THREADS.integer(environ)),
        "--keep-alive", str(WEB_KEEP_ALIVE_SECONDS.integer(environ)),
        "--graceful-timeout", str(WEB_GRACEFUL_TIMEOUT_SECONDS.integer(environ)),
        "--timeout", str(WEB_TIMEOUT_SECONDS.integer(environ)),
    ]  # fmt: skip
    worker_class = WEB_WORKER_CLASS.text(environ)
    if worker_class != "gthread":
        command += ["--worker-class", worker_class]
    return [*command, "config.wsgi"]


def uwsgi_command(environ: Mapping[str, str]) -> list[str]:
    timeout = WEB_TIMEOUT_SECONDS.integer(environ)
    graceful = str(WEB_GRACEFUL_TIMEOUT_SECONDS.integer(environ))
    return [
        _program("uwsgi"), "--master", "--strict", "--need-app", "--single-interpreter",
        "--module", WSGI_APP,
        "--http", WEB_BIND.text(environ),
        f"--http-keepalive={WEB_KEEP_ALIVE_SECONDS.integer(environ)}",
        "--http-timeout", str(timeout + 5),
        "--processes", str(WEB_PROCESSES.integer(environ)),
        "--threads", str(WEB_THREADS.integer(environ)),
        "--enable-threads",
        "--harakiri", str(timeout),
        "--die-on-term",
        "--hook-master-start", "unix_signal:15 gracefully_kill_them_all",
        "--worker-reload-mercy", graceful,
        "--reload-mercy", graceful,
        "--buffer-size", str(WEB_BUFFER_SIZE.integer(environ)),
        "--post-buffering", str(WEB_POST_BUFFERING.integer(environ)),
    ]  # fmt: skip


GRANIAN_KEEP_ALIVE_MAX_SECONDS = 60
"""The largest ``--http1-header-read-timeout`` granian takes (60000 ms, ``granian --help``)."""


def granian_keep_alive_seconds(environ: Mapping[str, str]) -> int:
    """``WEB_KEEP_ALIVE_SECONDS`` for granian: the image's default (75) lowered to its maximum."""
    if not environ.get(WEB_KEEP_ALIVE_SECONDS.name, "").strip():
        return GRANIAN_KEEP_ALIVE_MAX_SECONDS
    seconds = WEB_KEEP_ALIVE_SECONDS.integer(environ)
    if seconds > GRANIAN_KEEP_ALIVE_MAX_SECONDS:
        value = WEB_KEEP_ALIVE_SECONDS.text(environ)
        raise SettingError(f"{WEB_KEEP_ALIVE_SECONDS.name}={value!r}: granian keeps an idle connection "
                           f"at most {GRANIAN_KEEP_ALIVE_MAX_SECONDS} s (--http1-header-read-timeout)")
    return seconds


def granian_command(environ: Mapping[str, str]) -> list[str]:
    host, _, port = WEB_BIND.text(environ).rpartition(":")
    return [
        _program("granian"), "--interface", "wsgi", "--no-ws",
        "--host", host or "0.0.0.0", "--port", port,
        "--workers", str(WEB_PROCESSES.integer(environ)),
        "--blocking-threads", str(WEB_THREADS.integer(environ)),
        "--http1-header-read-timeout", str(granian_keep_alive_seconds(environ) * 1000),
        # granian's least is 1 s; 0 ("kill at once") becomes that.
        "--workers-kill-timeout", str(max(1, WEB_GRACEFUL_TIMEOUT_SECONDS.integer(environ))),
        "--respawn-failed-workers",
        "--log-level", "info", "--access-log",
        WSGI_APP,
    ]  # fmt: skip


def worker_command(environ: Mapping[str, str]) -> list[str]:
    return [
        _program("celery"), "--app", "config", "worker",
        "--concurrency", str(WORKER_CONCURRENCY.integer(environ)),
        "--prefetch-multiplier", str(WORKER_PREFETCH_MULTIPLIER.integer(environ)), "-O", "fair",
        "--without-heartbeat", "--without-gossip", "--without-mingle",
        "--loglevel", WORKER_LOG_LEVEL.text(environ),
    ]  # fmt: skip


def migrate_command(environ: Mapping[str, str]) -> list[str]:
    return [sys.executable, "manage.py", "migrate", "--noinput"]


def reconcile_command(environ: Mapping[str, str]) -> list[str]:
    """One reconciler pass (the CronJob's); ``reconcile --every S`` repeats it every S seconds."""
    return [sys.executable, "manage.py", "jobs_reconcile"]


def wait_for_credentials_command(environ: Mapping[str, str]) -> list[str]:
    """The migration Job's init container: waits for the pod's Pod Identity credentials."""
    return [sys.executable, "-m", "config.pod_credentials",
            "--timeout", str(CREDENTIALS_TIMEOUT_SECONDS.integer(environ))]


def bench_command(environ: Mapping[str, str]) -> list[str]:
    """The benchmark; its results JSON on stdout unless ``BENCH_RESULTS_MARKER`` is set."""
    out = BENCH_RESULTS_FILE if BENCH_RESULTS_MARKER.text(environ) else "-"
    return [sys.executable, "-m", "benchmarks", "run", *(["--fast"] if BENCH_FAST.flag(environ) else []), "--out", out]


COMMANDS: dict[str, Callable[[Mapping[str, str]], list[str]]] = {
    "web": web_command,
    "worker": worker_command,
    "migrate": migrate_command,
    "reconcile": reconcile_command,
    "wait-for-credentials": wait_for_credentials_command,
    "bench": bench_command,
}


def command(process: str, environ: Mapping[str, str], extra: Sequence[str] = ()) -> list[str]:
    """The full command line of `process`; SettingError on a bad variable, KeyError on a bad name."""
    return [*COMMANDS[process](environ), *extra]


def _bench_with_marker(argv: list[str], marker: str) -> int:
    # A container's log interleaves stdout and stderr: the run's own output goes to stderr and
    # the results are printed once, last, after the marker line (the Job's log ends with them).
    done = subprocess.run(argv, stdout=sys.stderr, check=False)
    if done.returncode != 0:
        return done.returncode
    print(marker, flush=True)
    sys.stdout.write(Path(BENCH_RESULTS_FILE).read_text())
    sys.stdout.flush()
    return 0


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] = os.environ) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in COMMANDS:
        print(f"usage: python -m config.launch {{{','.join(COMMANDS)}}} [extra args]", file=sys.stderr)
        return 2
    process, extra = args[0], args[1:]
    try:
        full = command(process, environ, extra)
    except SettingError as error:
        print(f"config.launch {process}: {error}", file=sys.stderr, flush=True)
        return 2
    if process == "bench" and BENCH_RESULTS_MARKER.text(environ):
        return _bench_with_marker(full, BENCH_RESULTS_MARKER.text(environ))
    sys.stdout.flush()
    os.execvp(full[0], full)  # never returns: the server takes this process's place


if __name__ == "__main__":
    sys.exit(main())
