"""`python -m config.launch <process>`: the command each process of the image starts with.

The launcher builds the server's command line from environment variables and execs it; these
tests check the command it builds, that a bad value is refused before anything starts, and
that the exec leaves no launcher between the kubelet's SIGTERM and the server.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from config import launch

SERVICE_DIR = Path(__file__).resolve().parents[2] / "service"


def flag(argv: list[str], name: str) -> str:
    for i, arg in enumerate(argv):
        if arg == name:
            return argv[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    raise AssertionError(f"{name} not in {argv}")


def test_uwsgi_runs_behind_its_http_router_stopping_gracefully_on_sigterm():
    argv = launch.command("web", {"WEB_SERVER": "uwsgi"})
    assert Path(argv[0]).name == "uwsgi"
    assert flag(argv, "--http") == "0.0.0.0:8000"  # the router owns the connections, not a thread each
    assert "--http11-socket" not in argv
    assert flag(argv, "--http-keepalive") == "75"
    assert (flag(argv, "--processes"), flag(argv, "--threads")) == ("1", "8")
    assert flag(argv, "--harakiri") == "60"
    assert int(flag(argv, "--http-timeout")) > 60  # the router outwaits the request's own limit
    assert "--die-on-term" in argv
    assert flag(argv, "--hook-master-start") == "unix_signal:15 gracefully_kill_them_all"
    assert flag(argv, "--worker-reload-mercy") == flag(argv, "--reload-mercy") == "30"
    assert int(flag(argv, "--buffer-size")) >= 32768  # ALB cookies exceed uWSGI's 4 KiB default


def test_web_follows_its_settings_for_each_server():
    env = {"WEB_PROCESSES": "2", "WEB_THREADS": "16", "WEB_KEEP_ALIVE_SECONDS": "90",
           "WEB_GRACEFUL_TIMEOUT_SECONDS": "20", "WEB_TIMEOUT_SECONDS": "45", "WEB_BIND": "127.0.0.1:9000"}
    uwsgi = launch.command("web", {**env, "WEB_SERVER": "uwsgi"})
    assert (flag(uwsgi, "--processes"), flag(uwsgi, "--threads"), flag(uwsgi, "--http-keepalive")) == ("2", "16", "90")
    assert (flag(uwsgi, "--harakiri"), flag(uwsgi, "--http-timeout"), flag(uwsgi, "--worker-reload-mercy")) == (
        "45", "50", "20")
    assert flag(uwsgi, "--http") == "127.0.0.1:9000"

    gunicorn = launch.command("web", {**env, "WEB_SERVER": "gunicorn"})
    assert Path(gunicorn[0]).name == "gunicorn"
    assert gunicorn[-1] == "config.wsgi"
    assert (flag(gunicorn, "--workers"), flag(gunicorn, "--threads"), flag(gunicorn, "--keep-alive")) == (
        "2", "16", "90")
    assert (flag(gunicorn, "--graceful-timeout"), flag(gunicorn, "--timeout")) == ("20", "45")
    assert flag(gunicorn, "--bind") == "127.0.0.1:9000"
    assert "--worker-class" not in gunicorn  # gthread, from gunicorn.conf.py: the sync worker ignores keep-alive
    sync = launch.command("web", {"WEB_SERVER": "gunicorn", "WEB_WORKER_CLASS": "sync"})
    assert flag(sync, "--worker-class") == "sync"

    granian = launch.command("web", {**env, "WEB_KEEP_ALIVE_SECONDS": "50", "WEB_SERVER": "granian"})
    assert Path(granian[0]).name == "granian"
    assert granian[-1] == launch.WSGI_APP
    assert (flag(granian, "--workers"), flag(granian, "--blocking-threads")) == ("2", "16")
    assert (flag(granian, "--host"), flag(granian, "--port")) == ("127.0.0.1", "9000")
    assert flag(granian, "--http1-header-read-timeout") == "50000"  # its idle limit, in ms
    assert flag(granian, "--workers-kill-timeout") == "20"


def test_web_defaults_to_granian_serving_wsgi_and_draining_within_the_grace():
    argv = launch.command("web", {})
    assert Path(argv[0]).name == "granian"  # docs/web-server.md: the least CPU per request of the maintained servers
    assert flag(argv, "--interface") == "wsgi"
    assert (flag(argv, "--host"), flag(argv, "--port")) == ("0.0.0.0", "8000")
    assert (flag(argv, "--workers"), flag(argv, "--blocking-threads")) == ("1", "8")
    assert "--no-ws" in argv and "--respawn-failed-workers" in argv
    # The image's 75 s is above what granian takes: its largest idle limit instead.
    assert flag(argv, "--http1-header-read-timeout") == "60000"
    assert flag(argv, "--workers-kill-timeout") == "30"
    assert flag(launch.command("web", {"WEB_SERVER": "granian", "WEB_GRACEFUL_TIMEOUT_SECONDS": "0"}),
                "--workers-kill-timeout") == "1"  # granian's least


def test_granian_refuses_a_keep_alive_it_cannot_keep():
    result = subprocess.run([sys.executable, "-m", "config.launch", "web"], cwd=SERVICE_DIR,
                            env={**os.environ, "WEB_SERVER": "granian", "WEB_KEEP_ALIVE_SECONDS": "75"},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "WEB_KEEP_ALIVE_SECONDS='75'" in result.stderr and "granian" in result.stderr


def test_worker_takes_one_task_at_a_time_and_keeps_its_event_loop_free():
    argv = launch.command("worker", {"WORKER_CONCURRENCY": "3"}, ["--hostname", "w1@%h"])
    assert Path(argv[0]).name == "celery"
    assert argv[1:5] == ["--app", "config", "--quiet", "worker"]  # --quiet: no plain-text banner
    assert flag(argv, "--concurrency") == "3"
    assert flag(argv, "--prefetch-multiplier") == "1" and flag(argv, "-O") == "fair"
    assert {"--without-heartbeat", "--without-gossip", "--without-mingle"} <= set(argv)
    assert argv[-2:] == ["--hostname", "w1@%h"]  # extra arguments go to the server


def test_one_shot_processes():
    assert launch.command("migrate", {})[1:] == ["manage.py", "migrate", "--noinput"]
    assert launch.command("reconcile", {}, ["--every", "1"])[1:] == ["manage.py", "jobs_reconcile", "--every", "1"]
    wait = launch.command("wait-for-credentials", {"CREDENTIALS_TIMEOUT_SECONDS": "30"})
    assert wait[1:] == ["-m", "config.pod_credentials", "--timeout", "30"]
    assert launch.command("bench", {})[1:] == ["-m", "benchmarks", "run", "--out", "-"]
    marked = launch.command("bench", {"BENCH_FAST": "true", "BENCH_RESULTS_MARKER": "---"})
    assert marked[1:] == ["-m", "benchmarks", "run", "--fast", "--out", launch.BENCH_RESULTS_FILE]


@pytest.mark.parametrize(("process", "name", "value"), [
    ("web", "WEB_THREADS", "eight"),
    ("web", "WEB_PROCESSES", "0"),
    ("web", "WEB_SERVER", "waitress"),
    ("worker", "WORKER_CONCURRENCY", "1.5"),
    ("worker", "WORKER_SOFT_SHUTDOWN_SECONDS", "-5"),
    ("wait-for-credentials", "CREDENTIALS_TIMEOUT_SECONDS", "-1"),
])
def test_a_bad_value_is_refused_at_start_naming_the_variable(process, name, value):
    result = subprocess.run([sys.executable, "-m", "config.launch", process], cwd=SERVICE_DIR,
                            env={**os.environ, name: value}, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert name in result.stderr and repr(value) in result.stderr
    assert result.stdout == ""


def test_an_unknown_process_shows_the_usage():
    result = subprocess.run([sys.executable, "-m", "config.launch", "serve"], cwd=SERVICE_DIR,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "web" in result.stderr and "worker" in result.stderr


def test_the_server_takes_the_launchers_place(tmp_path):
    # The exec leaves no launcher in between: the process the kubelet signals is the server.
    # `reconcile --every` is the cheapest long-running process to exec; its pid stays the launcher's.
    env = {**os.environ, "PYTHONPATH": str(SERVICE_DIR)}
    proc = subprocess.Popen([sys.executable, "-m", "config.launch", "reconcile", "--every", "60"], cwd=SERVICE_DIR,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        cmdline = Path(f"/proc/{proc.pid}/cmdline")
        deadline = time.monotonic() + 30
        while b"jobs_reconcile" not in cmdline.read_bytes() and time.monotonic() < deadline:
            assert proc.poll() is None
            time.sleep(0.05)
        args = cmdline.read_bytes().split(b"\0")
        assert b"jobs_reconcile" in args and b"config.launch" not in args
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def test_the_bench_job_log_ends_with_the_marker_and_the_results_only(tmp_path):
    # In the cluster Job the run's progress goes to stderr, then the marker and the results JSON.
    results = tmp_path / "results.json"
    run = f"open({str(results)!r}, 'w').write('{{\"runs\": 1}}'); print('measuring...')"
    code = ("import sys; from config import launch; "
            f"launch.BENCH_RESULTS_FILE = {str(results)!r}; "
            f"sys.exit(launch._bench_with_marker([sys.executable, '-c', {run!r}], 'MARK'))")
    done = subprocess.run([sys.executable, "-c", code], cwd=SERVICE_DIR, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == 'MARK\n{"runs": 1}'
    assert "measuring..." in done.stderr
