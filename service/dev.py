"""Run the service on a laptop: the image's web server (granian) on :8000 and one Celery worker.

Their metrics (django_eks_runtime/metrics.py) are served as in the cluster: the web's on its
probe server (``PROBE_BIND``, default 127.0.0.1:8001/metrics), the worker's by its main process
(``METRICS_BIND``, default 127.0.0.1:8002/metrics); each process gets a metrics directory of its
own from the launcher.

Each process starts as in the image, through ``python -m config.launch`` (config/launch.py);
set its variables (``WEB_SERVER``, ``WEB_BIND``, ``WEB_THREADS``, ``WORKER_CONCURRENCY``...) to
run it differently.

    make dev        (or: uv run --package django-eks-service python service/dev.py)

Uses the local PostgreSQL and Redis from config.settings.local (override with
DATABASE_URL / REDIS_URL), creates the database if it does not exist, applies
migrations, then runs both processes until Ctrl-C, which stops them gracefully.
"""

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SERVICE_DIR = Path(__file__).resolve().parent
LAUNCH = [sys.executable, "-m", "config.launch"]
STOP_TIMEOUT_SECONDS = 35


def database_ensure() -> None:
    """Create the settings' database on its server if it is missing."""
    import psycopg
    from django.conf import settings
    from psycopg import sql

    db = settings.DATABASES["default"]
    params = {k: v for k, v in {"host": db["HOST"], "port": db["PORT"], "user": db["USER"],
                                "password": db["PASSWORD"]}.items() if v}
    with psycopg.connect(dbname="postgres", autocommit=True, connect_timeout=5, **params) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db["NAME"],)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db["NAME"])))
            print(f"dev: created database {db['NAME']}", flush=True)


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    os.environ.setdefault("WEB_BIND", "127.0.0.1:8000")
    os.environ.setdefault("PROBE_BIND", "127.0.0.1:8001")
    worker_metrics = os.environ.pop("METRICS_BIND", "") or "127.0.0.1:8002"
    # One directory per process, which the launcher creates: a shared one would be emptied by
    # whichever starts second.
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    if not Path("/dev/shm").is_dir():  # macOS has no /dev/shm
        os.environ.setdefault("GUNICORN_WORKER_TMP_DIR", tempfile.gettempdir())
    os.environ.setdefault("CELERY_HEARTBEAT_FILE", str(Path(tempfile.gettempdir()) / "django-eks-dev-heartbeat"))
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SERVICE_DIR), os.environ.get("PYTHONPATH")]))
    sys.path.insert(0, str(SERVICE_DIR))

    import django

    django.setup()
    database_ensure()
    subprocess.run([*LAUNCH, "migrate"], cwd=SERVICE_DIR, check=True)

    commands = {"web": [*LAUNCH, "web"], "worker": [*LAUNCH, "worker"]}
    # Own sessions: the terminal's Ctrl-C reaches only this script, which then
    # stops each child with SIGTERM (graceful for both gunicorn and Celery).
    environs = {"web": dict(os.environ), "worker": {**os.environ, "METRICS_BIND": worker_metrics}}
    children = {name: subprocess.Popen(argv, cwd=SERVICE_DIR, env=environs[name], start_new_session=True)
                for name, argv in commands.items()}
    print(f"dev: web on http://{os.environ['WEB_BIND']} and a Celery worker; Ctrl-C stops both", flush=True)
    print(f"dev: metrics of the web on http://{os.environ['PROBE_BIND']}/metrics, "
          f"of the worker on http://{worker_metrics}/metrics", flush=True)

    stopping = False

    def request_stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    exit_code = 0
    while not stopping:
        exited = [name for name, child in children.items() if child.poll() is not None]
        if exited:
            print(f"dev: {', '.join(exited)} exited; stopping the rest", file=sys.stderr, flush=True)
            exit_code = 1
            break
        time.sleep(0.2)

    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    for name, child in children.items():
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"dev: {name} did not stop in time; killing it", file=sys.stderr, flush=True)
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
    print("dev: stopped", flush=True)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
