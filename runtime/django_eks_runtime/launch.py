"""How every process of an app starts: ``python -m django_eks_runtime <process> [extra args]``.

One command per process (``web``, ``worker``, ``beat``, ``migrate``), for the image, the pods
and the tests alike. Each reads its settings from environment variables (the table below and
docs/app-contract.md); a variable that is unset or empty takes the default, a value that does
not parse stops the launcher before anything starts, with a message naming the variable. Extra
arguments after the process name are appended to the server's own command line (the tests
give Celery a ``--hostname``). Where the app is: ``APP_WSGI`` (``module:callable``, for ``web``)
and ``APP_CELERY`` (``celery --app``, for ``worker`` and ``beat``); ``WORKER_QUEUES`` names the
queues a worker consumes.

The launcher replaces itself with the server (``os.execvp``): no shell and no parent in
between, so the kubelet's SIGTERM reaches gunicorn's, uWSGI's, granian's or Celery's main process and
starts its graceful shutdown. Run it from the app's directory (the image's working directory),
as ``migrate`` runs ``manage.py`` there. An app adds processes of its own with
``Launcher.extend`` (the demo service's ``config.launch`` does).

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
(``django_eks_runtime.worker.Heartbeat``) for as long as Redis does. SIGTERM lets running tasks
finish within ``WORKER_SOFT_SHUTDOWN_SECONDS``, then hands them back to the queue
(``django_eks_runtime.worker_shutdown``, docs/worker-shutdown.md).

Beat: one process per app (the platform runs exactly one), its schedule file under /tmp, as the
image's root filesystem is read-only (``celery beat --schedule``; Celery's default is
``celerybeat-schedule`` in the working directory, celery/bin/beat.py).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

SERVERS = ("granian", "gunicorn", "uwsgi")
"""The application servers ``WEB_SERVER`` picks from; the first is the image's default."""
GUNICORN_CONFIG = "python:django_eks_runtime.gunicorn_conf"
"""gunicorn's settings module that the launcher's flags leave out (``--config python:<module>``)."""


class SettingError(ValueError):
    """A launcher variable whose value does not parse; the message names the variable."""


@dataclass(frozen=True)
class Setting:
    name: str
    default: str
    help: str
    choices: tuple[str, ...] = ()
    minimum: int | None = None
    required: bool = False

    def text(self, environ: Mapping[str, str]) -> str:
        value = environ.get(self.name, "").strip() or self.default
        if self.required and not value:
            raise SettingError(f"{self.name} is unset: {self.help}")
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

APP_WSGI = Setting("APP_WSGI", "", "the app's WSGI callable, module:callable (web)", required=True)
APP_CELERY = Setting("APP_CELERY", "", "the app's Celery application, as `celery --app` takes it (worker, beat)",
                     required=True)

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
WEB_GUNICORN_CONFIG = Setting(
    "WEB_GUNICORN_CONFIG", GUNICORN_CONFIG, "gunicorn: its settings file or python:module (the runtime's own)")
WORKER_CONCURRENCY = Setting("WORKER_CONCURRENCY", "1", "Celery worker processes", minimum=1)
WORKER_PREFETCH_MULTIPLIER = Setting(
    "WORKER_PREFETCH_MULTIPLIER", "1", "tasks each worker process reserves ahead", minimum=1)
WORKER_SOFT_SHUTDOWN_SECONDS = Setting(
    "WORKER_SOFT_SHUTDOWN_SECONDS", "30",
    "after SIGTERM, running tasks may finish within this; then they go back to the queue (0: no bound)",
    minimum=0)
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
WORKER_LOG_LEVEL = Setting("WORKER_LOG_LEVEL", "INFO", "Celery's log level", choices=LOG_LEVELS)
WORKER_QUEUES = Setting(
    "WORKER_QUEUES", "", "comma-separated Celery queues this worker consumes (unset: the app's default queue)")
METRICS_BIND = Setting(
    "METRICS_BIND", "", "worker: host:port its main process serves /metrics on (unset: no metrics server)")
MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
PROMETHEUS_MULTIPROC_DIR = Setting(
    MULTIPROC_DIR, "",
    "web, worker: the directory each process writes its metrics to (unset: a new one under /tmp; "
    "emptied at each start)")
# Read by the processes' metrics (metrics.py), listed here with the rest of the pods' environment.
APP_COMPONENT = Setting(
    "APP_COMPONENT", "", "the metrics' component label: web, worker-<key>... (unset: web or worker)")
POD_NAME = Setting("POD_NAME", "", "the pod's name, for app_pod_info (the downward API's metadata.name)")
NODE_NAME = Setting("NODE_NAME", "", "the pod's node, for app_pod_info (the downward API's spec.nodeName)")
BEAT_SCHEDULE_FILE = Setting(
    "BEAT_SCHEDULE_FILE", "/tmp/celerybeat-schedule", "beat's schedule file (writable; the root filesystem is not)")

SETTINGS: tuple[Setting, ...] = (
    APP_WSGI, APP_CELERY,
    WEB_SERVER, WEB_BIND, WEB_PROCESSES, WEB_THREADS, WEB_KEEP_ALIVE_SECONDS, WEB_TIMEOUT_SECONDS,
    WEB_GRACEFUL_TIMEOUT_SECONDS, WEB_BUFFER_SIZE, WEB_POST_BUFFERING, WEB_WORKER_CLASS, WEB_GUNICORN_CONFIG,
    WORKER_CONCURRENCY, WORKER_PREFETCH_MULTIPLIER, WORKER_SOFT_SHUTDOWN_SECONDS, WORKER_LOG_LEVEL, WORKER_QUEUES, METRICS_BIND, PROMETHEUS_MULTIPROC_DIR,
    APP_COMPONENT, POD_NAME, NODE_NAME, BEAT_SCHEDULE_FILE,
)
METRICS_PROCESSES = ("web", "worker")
"""The processes that record metrics in ``PROMETHEUS_MULTIPROC_DIR`` (metrics.py)."""


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
        _program("gunicorn"), "--config", WEB_GUNICORN_CONFIG.text(environ),
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
    return [*command, gunicorn_target(APP_WSGI.text(environ))]


def gunicorn_target(wsgi: str) -> str:
    """``module:application`` as gunicorn spells it: the module alone, whose ``application`` it
    takes by default (gunicorn/util.py, ``import_app``: no colon means ``application``)."""
    module, _, name = wsgi.partition(":")
    return module if name == "application" else wsgi


def uwsgi_command(environ: Mapping[str, str]) -> list[str]:
    timeout = WEB_TIMEOUT_SECONDS.integer(environ)
    graceful = str(WEB_GRACEFUL_TIMEOUT_SECONDS.integer(environ))
    return [
        _program("uwsgi"), "--master", "--strict", "--need-app", "--single-interpreter",
        "--module", APP_WSGI.text(environ),
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
        APP_WSGI.text(environ),
    ]  # fmt: skip


QUIET = ("--quiet",)
"""Celery's option that leaves out the worker's and beat's start-up banners, printed to stdout
as plain text (celery 5.6.3, celery/apps/worker.py line 141 and apps/beat.py lines 79 and 103:
``if not self.quiet``): every line on stdout is then a JSON log line (logs.py)."""


def worker_command(environ: Mapping[str, str]) -> list[str]:
    queues = [queue.strip() for queue in WORKER_QUEUES.text(environ).split(",") if queue.strip()]
    # Read by the worker itself (worker_shutdown.py, worker.py); checked here, before it starts.
    WORKER_SOFT_SHUTDOWN_SECONDS.integer(environ)
    bind_address(METRICS_BIND, environ)
    return [
        _program("celery"), "--app", APP_CELERY.text(environ), *QUIET, "worker",
        "--concurrency", str(WORKER_CONCURRENCY.integer(environ)),
        "--prefetch-multiplier", str(WORKER_PREFETCH_MULTIPLIER.integer(environ)), "-O", "fair",
        "--without-heartbeat", "--without-gossip", "--without-mingle",
        "--loglevel", WORKER_LOG_LEVEL.text(environ),
        *(["--queues", ",".join(queues)] if queues else []),
    ]  # fmt: skip


def beat_command(environ: Mapping[str, str]) -> list[str]:
    return [
        _program("celery"), "--app", APP_CELERY.text(environ), *QUIET, "beat",
        "--schedule", BEAT_SCHEDULE_FILE.text(environ),
        "--loglevel", WORKER_LOG_LEVEL.text(environ),
    ]  # fmt: skip


def migrate_command(environ: Mapping[str, str]) -> list[str]:
    return [sys.executable, "manage.py", "migrate", "--noinput"]


Command = Callable[[Mapping[str, str]], list[str]]
"""A process's command line from the environment; SettingError names a variable that is wrong."""
Runner = Callable[[list[str], Mapping[str, str]], int]
"""Runs a process's full command line instead of the exec (the demo's benchmark Job does)."""


def bind_address(setting: Setting, environ: Mapping[str, str]) -> tuple[str, int] | None:
    """``host:port`` of `setting` (an empty host: all interfaces), None when unset."""
    value = setting.text(environ)
    if not value:
        return None
    host, _, port = value.rpartition(":")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise SettingError(f"{setting.name}={value!r}: expected host:port")
    return host or "0.0.0.0", int(port)


def metrics_dir(environ: Mapping[str, str]) -> str:
    """``PROMETHEUS_MULTIPROC_DIR`` emptied of an earlier run's files, or a new empty directory.

    prometheus-client: the directory "must be wiped between process/Gunicorn runs (before
    startup is recommended)", and set from outside Python so that every child inherits it
    (prometheus/client_python@d0b497ffe069865537e55af52cb00c329d58a6f0:docs/content/multiprocess/_index.md
    lines 31-36). A container restarted in the same pod finds its emptyDir as the last run left
    it; the files a process writes are ``<type>[_<mode>]_<pid>.db`` (``values.py`` lines 71-80),
    and only those are removed.
    """
    path = PROMETHEUS_MULTIPROC_DIR.text(environ)
    if not path:
        import tempfile

        return tempfile.mkdtemp(prefix="app-metrics-")
    folder = Path(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("*.db"):
            stale.unlink()
    except OSError as error:
        raise SettingError(f"{MULTIPROC_DIR}={path!r}: cannot use it for metrics: {error}") from None
    return path


def exec_command(argv: list[str], environ: Mapping[str, str]) -> int:
    sys.stdout.flush()
    # never returns: the server takes this process's place, with the launcher's environment
    os.execvpe(argv[0], argv, dict(environ))


@dataclass(frozen=True)
class Launcher:
    """A launcher's processes, and what it fills in where the environment leaves a variable unset."""

    prog: str
    commands: Mapping[str, Command]
    defaults: Mapping[str, str] = field(default_factory=dict)
    runners: Mapping[str, Runner] = field(default_factory=dict)

    def extend(self, prog: str, commands: Mapping[str, Command] | None = None,
               defaults: Mapping[str, str] | None = None, runners: Mapping[str, Runner] | None = None) -> Launcher:
        """This launcher with more processes (or other ones under the same names) and defaults."""
        return Launcher(prog, {**self.commands, **(commands or {})}, {**self.defaults, **(defaults or {})},
                        {**self.runners, **(runners or {})})

    def environ(self, environ: Mapping[str, str]) -> dict[str, str]:
        """``environ`` with this launcher's defaults where a variable is unset or empty."""
        merged = dict(environ)
        for name, value in self.defaults.items():
            if not merged.get(name, "").strip():
                merged[name] = value
        return merged

    def command(self, process: str, environ: Mapping[str, str], extra: Sequence[str] = ()) -> list[str]:
        """The full command line of `process`; SettingError on a bad variable, KeyError on a bad name."""
        return [*self.commands[process](self.environ(environ)), *extra]

    def main(self, argv: Sequence[str] | None = None, environ: Mapping[str, str] = os.environ) -> int:
        args = list(sys.argv[1:] if argv is None else argv)
        if not args or args[0] not in self.commands:
            print(f"usage: python -m {self.prog} {{{','.join(self.commands)}}} [extra args]", file=sys.stderr)
            return 2
        process, extra = args[0], args[1:]
        run_environ = self.environ(environ)
        try:
            full = self.command(process, environ, extra)
            if process in METRICS_PROCESSES:
                run_environ[MULTIPROC_DIR] = metrics_dir(run_environ)
        except SettingError as error:
            print(f"{self.prog} {process}: {error}", file=sys.stderr, flush=True)
            return 2
        return self.runners.get(process, exec_command)(full, run_environ)


LAUNCHER = Launcher("django_eks_runtime", {
    "web": web_command,
    "worker": worker_command,
    "beat": beat_command,
    "migrate": migrate_command,
})
COMMANDS = LAUNCHER.commands
command = LAUNCHER.command
main = LAUNCHER.main
