"""How every process of the image starts: ``python -m config.launch <process> [extra args]``.

The runtime's launcher (django_eks_runtime/launch.py: ``web``, ``worker``, ``beat``,
``migrate``, the settings table and why each flag) with the demo service's own processes added
(the reconciler, the migration Job's credentials wait, the benchmark) and its own app filled
in where the environment names none: its WSGI callable, its Celery app and its gunicorn
settings file. One command per process, for the Dockerfile, the pods, ``make dev``, the
benchmark and the tests alike; run it from the service directory (the image's /app).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from django_eks_runtime import launch as runtime
from django_eks_runtime.launch import SERVERS, Setting, SettingError

__all__ = ["SERVERS", "SETTINGS", "SettingError", "command", "main"]

WSGI_APP = "config.wsgi:application"
DEFAULTS = {
    runtime.APP_WSGI.name: WSGI_APP,
    runtime.APP_CELERY.name: "config",
    runtime.WEB_GUNICORN_CONFIG.name: "gunicorn.conf.py",
}
"""The demo is the app when the environment names none (its pods set none of these)."""
BENCH_RESULTS_FILE = "/tmp/bench-results.json"

CREDENTIALS_TIMEOUT_SECONDS = Setting(
    "CREDENTIALS_TIMEOUT_SECONDS", "120", "how long wait-for-credentials waits for Pod Identity", minimum=1)
BENCH_FAST = Setting("BENCH_FAST", "false", "the benchmark's short run")
BENCH_RESULTS_MARKER = Setting(
    "BENCH_RESULTS_MARKER", "", "when set: the run's output to stderr, then this line and the results JSON on stdout")

SETTINGS: tuple[Setting, ...] = (*runtime.SETTINGS, CREDENTIALS_TIMEOUT_SECONDS, BENCH_FAST, BENCH_RESULTS_MARKER)


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


def _run_bench(argv: list[str], environ: Mapping[str, str]) -> int:
    marker = BENCH_RESULTS_MARKER.text(environ)
    return _bench_with_marker(argv, marker) if marker else runtime.exec_command(argv, environ)


LAUNCHER = runtime.LAUNCHER.extend(
    "config.launch",
    commands={
        "reconcile": reconcile_command,
        "wait-for-credentials": wait_for_credentials_command,
        "bench": bench_command,
    },
    defaults=DEFAULTS,
    runners={"bench": _run_bench},
)
COMMANDS = LAUNCHER.commands


def command(process: str, environ: Mapping[str, str], extra: Sequence[str] = ()) -> list[str]:
    """The full command line of `process`; SettingError on a bad variable, KeyError on a bad name."""
    return LAUNCHER.command(process, environ, extra)


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] = os.environ) -> int:
    return LAUNCHER.main(argv, environ)


if __name__ == "__main__":
    sys.exit(main())
