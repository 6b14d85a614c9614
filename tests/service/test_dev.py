"""``make dev``: creates the database, migrates, serves, works, and stops cleanly on Ctrl-C."""

import os
import re
import signal
import subprocess
import sys
import uuid

import psycopg
import pytest
import requests
from conftest import TEST_REDIS_URL, encode, photo_like
from service_processes import SERVICE_DIR, free_port, wait_for

# The suite's PostgreSQL server (given or throwaway), another database on it.
SERVER_URL = os.environ["DATABASE_URL"].rsplit("/", 1)[0]


@pytest.fixture
def scratch_database():
    name = f"django_eks_dev_{uuid.uuid4().hex[:8]}"
    yield name
    with psycopg.connect(f"{SERVER_URL}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_dev_runs_web_and_worker_and_stops_on_ctrl_c(scratch_database, tmp_path):
    port, probe_port, metrics_port = free_port(), free_port(), free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "CELERY_", "GUNICORN_", "WEB_", "WORKER_"))},
        "DATABASE_URL": f"{SERVER_URL}/{scratch_database}",
        "REDIS_URL": TEST_REDIS_URL.rsplit("/", 1)[0] + "/13",
        "WEB_BIND": f"127.0.0.1:{port}",
        "PROBE_BIND": f"127.0.0.1:{probe_port}",
        "METRICS_BIND": f"127.0.0.1:{metrics_port}",
        "CELERY_HEARTBEAT_FILE": str(tmp_path / "heartbeat"),
    }
    log = tmp_path / "dev.log"
    with open(log, "wb") as out:
        dev = subprocess.Popen([sys.executable, str(SERVICE_DIR / "dev.py")], env=env, stdout=out,
                               stderr=subprocess.STDOUT, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"

        def job_done() -> bool:
            assert dev.poll() is None, log.read_text()
            try:
                return requests.get(f"{url}/api/jobs/{job_id}", timeout=2).json()["status"] == "done"
            except requests.RequestException:
                return False

        def web_up() -> bool:
            assert dev.poll() is None, log.read_text()
            try:
                return requests.get(f"{url}/readyz", timeout=2).status_code == 200
            except requests.RequestException:
                return False

        wait_for(web_up, timeout=60, interval=0.3, what="dev web server")
        wait_for(lambda: "ready." in log.read_text(), timeout=30, what="dev worker")
        response = requests.post(f"{url}/api/jobs", files={"image": ("a.png", encode(photo_like(200, 100)))},
                                 timeout=10)
        assert response.status_code == 201
        job_id = response.json()["id"]
        wait_for(job_done, timeout=30, interval=0.3, what="job done")
        # The metrics of both, where dev printed them: the upload counted, the job's task run.
        web_metrics, worker_metrics = f"http://127.0.0.1:{probe_port}/metrics", f"http://127.0.0.1:{metrics_port}/metrics"
        assert f"metrics of the web on {web_metrics}, of the worker on {worker_metrics}" in log.read_text()
        assert 'django_http_requests_total{method="POST",route="api/jobs",status="201"} 1.0' in (
            requests.get(web_metrics, timeout=10).text)
        wait_for(lambda: 'outcome="succeeded"' in requests.get(worker_metrics, timeout=10).text, timeout=30,
                 what="the job's task counted")
        # Its queue wait too: the web stamped the message's publish time (django_eks_runtime.worker).
        assert re.search(r'^celery_task_queue_wait_seconds_count\{[^}]*task="jobs.compress"[^}]*\} 1\.0$',
                         requests.get(worker_metrics, timeout=10).text, re.M)

        # Ctrl-C in a terminal sends SIGINT to the foreground process group.
        os.killpg(dev.pid, signal.SIGINT)
        assert dev.wait(timeout=45) == 0, log.read_text()
        output = log.read_text()
        assert f"created database {scratch_database}" in output
        assert "dev: stopped" in output
        with pytest.raises(requests.ConnectionError):
            requests.get(f"{url}/healthz", timeout=2)
    finally:
        if dev.poll() is None:
            os.killpg(dev.pid, signal.SIGKILL)
            dev.wait(timeout=10)
