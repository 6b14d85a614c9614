"""`python -m django_eks_runtime <process>`: the launcher any app's pods start with."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django_eks_runtime import launch

RUNTIME_DIR = Path(__file__).resolve().parents[2] / "runtime"
APP = {"APP_WSGI": "site.wsgi:application", "APP_CELERY": "site.celery:app"}


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("APP_", "WEB_", "WORKER_"))}
    return subprocess.run([sys.executable, "-m", "django_eks_runtime", *args], env={**clean, **env},
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(("process", "name"), [("web", "APP_WSGI"), ("worker", "APP_CELERY"), ("beat", "APP_CELERY")])
def test_a_process_without_its_app_is_refused_naming_the_variable(process, name):
    result = run(process, env={})
    assert result.returncode == 2
    assert f"{name} is unset" in result.stderr and result.stdout == ""


def test_the_usage_names_the_runtimes_processes():
    result = run("reconcile", env={})
    assert result.returncode == 2
    assert "{web,worker,beat,migrate}" in result.stderr


def test_web_serves_the_apps_callable_on_each_server():
    assert launch.command("web", APP)[-1] == "site.wsgi:application"  # granian, the default
    uwsgi = launch.command("web", {**APP, "WEB_SERVER": "uwsgi"})
    assert uwsgi[uwsgi.index("--module") + 1] == "site.wsgi:application"
    assert launch.command("web", {**APP, "WEB_SERVER": "granian"})[-1] == "site.wsgi:application"
    gunicorn = launch.command("web", {**APP, "WEB_SERVER": "gunicorn"})
    # gunicorn's spelling of module:application is the module alone; its settings are the runtime's.
    assert gunicorn[-1] == "site.wsgi"
    assert gunicorn[gunicorn.index("--config") + 1] == "python:django_eks_runtime.gunicorn_conf"
    other = launch.command("web", {**APP, "WEB_SERVER": "gunicorn", "APP_WSGI": "site.wsgi:app"})
    assert other[-1] == "site.wsgi:app"


def test_a_worker_consumes_the_queues_it_is_given():
    worker = launch.command("worker", {**APP, "WORKER_QUEUES": " images, emails "})
    assert worker[1:3] == ["--app", "site.celery:app"] and worker[4] == "worker"
    assert worker[worker.index("--queues") + 1] == "images,emails"
    assert "--queues" not in launch.command("worker", APP)  # unset: the app's default queue


def test_beat_keeps_its_schedule_where_it_can_write():
    beat = launch.command("beat", APP)
    assert beat[1:3] == ["--app", "site.celery:app"] and beat[4] == "beat"
    assert beat[beat.index("--schedule") + 1].startswith("/tmp/")


def test_an_extension_adds_processes_and_fills_in_its_app():
    extended = launch.LAUNCHER.extend("site.launch", commands={"hello": lambda environ: ["echo", "hi"]},
                                      defaults=APP)
    assert extended.command("hello", {}) == ["echo", "hi"]
    assert extended.command("worker", {"APP_CELERY": ""})[2] == "site.celery:app"  # empty counts as unset
    assert extended.command("worker", {"APP_CELERY": "other"})[2] == "other"
    assert "hello" not in launch.COMMANDS


def test_the_launcher_imports_neither_django_nor_celery():
    # It runs before the server: its start costs every pod start.
    code = "import sys, django_eks_runtime.launch; print(sorted({'django', 'celery'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[]", done.stderr


def test_the_runtime_knows_neither_the_infra_nor_the_demo():
    imported: set[str] = set()
    for path in (RUNTIME_DIR / "django_eks_runtime").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                imported.add(node.module.split(".")[0])
    assert not imported & {"stack", "config", "jobs", "benchmarks"}, imported


def launched(process: str, env: dict[str, str]) -> tuple[str, list[str]]:
    """What `process` finds when the launcher execs it: PROMETHEUS_MULTIPROC_DIR and its files."""
    shows = ("import os; d = os.environ.get('PROMETHEUS_MULTIPROC_DIR', ''); "
             "print(d); print(sorted(os.listdir(d)) if d else [])")
    code = ("import sys; from django_eks_runtime import launch; "
            f"show = lambda environ: [sys.executable, '-c', {shows!r}]; "
            "sys.exit(launch.LAUNCHER.extend('t', commands={'web': show, 'worker': show, 'beat': show})"
            f".main([{process!r}]))")
    clean = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    done = subprocess.run([sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    folder, files = done.stdout.splitlines()
    return folder, ast.literal_eval(files)


@pytest.mark.parametrize("process", ["web", "worker"])
def test_the_metrics_directory_is_a_new_empty_one_when_unset(process):
    folder, files = launched(process, {})
    assert folder and files == [] and Path(folder).is_dir()
    try:
        assert launched(process, {"PROMETHEUS_MULTIPROC_DIR": ""})[0] != folder  # each start its own
    finally:
        Path(folder).rmdir()


@pytest.mark.parametrize("process", ["web", "worker"])
def test_the_metrics_directory_given_loses_the_last_runs_files(process, tmp_path):
    # What processes of the last run left (prometheus-client's <type>[_<mode>]_<pid>.db), and a file of another's.
    for name in ("counter_41.db", "histogram_41.db", "gauge_livesum_52.db", "notes.txt"):
        (tmp_path / name).write_text("x")
    assert launched(process, {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}) == (str(tmp_path), ["notes.txt"])
    missing = tmp_path / "not-yet"
    assert launched(process, {"PROMETHEUS_MULTIPROC_DIR": str(missing)}) == (str(missing), [])


def test_beat_records_no_metrics_and_gets_no_directory():
    assert launched("beat", {}) == ("", [])


def test_a_metrics_directory_that_cannot_be_used_is_refused_naming_it(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = run("worker", env={**APP, "PROMETHEUS_MULTIPROC_DIR": str(blocker / "metrics")})
    assert result.returncode == 2
    assert f"PROMETHEUS_MULTIPROC_DIR='{blocker / 'metrics'}': cannot use it for metrics" in result.stderr


def test_a_bad_metrics_bind_is_refused_naming_it():
    result = run("worker", env={**APP, "METRICS_BIND": "localhost"})
    assert result.returncode == 2
    assert "METRICS_BIND='localhost': expected host:port" in result.stderr
