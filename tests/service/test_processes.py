"""The service as real processes: gunicorn, Celery workers, and the faults they must survive."""

import io
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
import requests
from conftest import encode, photo_like
from PIL import Image
from service_processes import SERVICE_DIR, free_port, wait_for
from tls_postgres import tls_server  # noqa: F401  (fixture)

from config.launch import SERVERS
from jobs.models import Job, JobResult

# Short enough for a test, with the time limit below it as the settings require.
FAULT_ENV = {"CELERY_VISIBILITY_TIMEOUT": "6", "CELERY_TASK_TIME_LIMIT": "5", "CELERY_HEARTBEAT_INTERVAL": "1"}


def submit(url: str, data: bytes) -> str:
    response = requests.post(f"{url}/api/jobs", files={"image": ("photo.png", data, "image/png")}, timeout=30)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def wait_all_done(job_ids: list[str], timeout: float) -> None:
    def all_done() -> bool:
        statuses = set(Job.objects.filter(pk__in=job_ids).values_list("status", flat=True))
        assert "failed" not in statuses
        return statuses == {"done"}

    wait_for(all_done, timeout=timeout, interval=0.2, what=f"jobs {job_ids} done")


def wait_running(job_ids: list[str], timeout: float = 20) -> Job:
    return wait_for(
        lambda: Job.objects.filter(pk__in=job_ids, status="running").first(),
        timeout=timeout,
        interval=0.05,
        what="a job to start running",
    )


def assert_each_done_once(job_ids: list[str]) -> None:
    assert JobResult.objects.filter(job_id__in=job_ids).count() == len(job_ids)
    assert set(Job.objects.filter(pk__in=job_ids).values_list("status", flat=True)) == {"done"}


def test_upload_poll_and_fetch_compressed_image(processes):
    web, url = processes.gunicorn()
    processes.worker()
    original = encode(photo_like(1600, 1200))
    job_id = submit(url, original)

    def finished():
        body = requests.get(f"{url}/api/jobs/{job_id}", timeout=5).json()
        return body if body["status"] in {"done", "failed"} else None

    body = wait_for(finished, timeout=60, interval=0.2, what="job finished")
    assert body["status"] == "done", body
    result = requests.get(f"{url}/api/jobs/{job_id}/result", timeout=10)
    assert result.status_code == 200
    assert result.headers["Content-Type"] == "image/webp"
    image = Image.open(io.BytesIO(result.content))
    image.load()
    assert image.size == (1280, 960)
    assert len(result.content) < len(original)
    assert body["output"]["bytes"] == len(result.content)
    assert body["input"]["bytes"] == len(original)


def test_sigkilled_worker_loses_no_job_and_duplicates_none(processes):
    _, url = processes.gunicorn()
    first = processes.worker("worker-1", env=FAULT_ENV, slow_job_seconds=3)
    image = encode(photo_like(320, 240))
    job_ids = [submit(url, image) for _ in range(3)]
    victim = wait_running(job_ids)

    # The whole worker (parent and pool child) dies at once, as on an OOM kill or node loss.
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(timeout=10)
    victim.refresh_from_db()
    assert victim.status == "running"

    processes.worker("worker-2", env=FAULT_ENV, slow_job_seconds=0.5)
    # The orphaned message comes back after the visibility timeout (6 s).
    wait_all_done(job_ids, timeout=60)

    assert_each_done_once(job_ids)
    attempts = dict(Job.objects.filter(pk__in=job_ids).values_list("id", "attempts"))
    assert attempts[victim.id] == 2  # redelivered once, completed once
    assert sorted(attempts.values()) == [1, 1, 2]
    print(f"SIGKILL: submitted={len(job_ids)} completed={JobResult.objects.filter(job_id__in=job_ids).count()} "
          f"attempts={sorted(attempts.values())}")


def test_sigterm_worker_finishes_running_job_and_keeps_the_queue(processes, tmp_path):
    _, url = processes.gunicorn()
    worker = processes.worker("worker-1", env=FAULT_ENV, slow_job_seconds=3)
    image = encode(photo_like(320, 240))
    job_ids = [submit(url, image) for _ in range(2)]
    running = wait_running(job_ids)

    # The heartbeat stays fresh while the pool child is busy with the job.
    heartbeat_file = tmp_path / "worker-1.heartbeat"
    before = heartbeat_file.stat().st_mtime
    time.sleep(1.5)
    assert heartbeat_file.stat().st_mtime > before
    probe = subprocess.run(
        [sys.executable, "-m", "config.heartbeat", "--max-age", "3"],
        cwd=SERVICE_DIR, env={**os.environ, **processes.base_env, **FAULT_ENV,
                              "CELERY_HEARTBEAT_FILE": str(heartbeat_file)},
        capture_output=True, text=True, timeout=30,
    )
    assert probe.returncode == 0, probe.stderr

    # Kubernetes signals only the container's main process: the Celery parent.
    os.kill(worker.pid, signal.SIGTERM)
    assert worker.wait(timeout=30) == 0
    running.refresh_from_db()
    assert running.status == "done"  # warm shutdown let it finish
    assert not heartbeat_file.exists()  # a stopped worker is not alive

    processes.worker("worker-2", env=FAULT_ENV)
    wait_all_done(job_ids, timeout=60)
    assert_each_done_once(job_ids)
    attempts = sorted(Job.objects.filter(pk__in=job_ids).values_list("attempts", flat=True))
    assert attempts == [1, 1]
    print(f"SIGTERM worker: submitted={len(job_ids)} completed={len(job_ids)} attempts={attempts}")


@pytest.mark.parametrize("server", SERVERS)
def test_sigterm_gunicorn_completes_requests_in_flight(processes, server):
    web, url = processes.web(server, threads=8, graceful_timeout=20, env={"API_IO_ENABLED": "true"})
    results: list[int | str] = []

    def call() -> None:
        try:
            results.append(requests.get(f"{url}/api/io", params={"ms": 2000}, timeout=30).status_code)
        except requests.RequestException as exc:
            results.append(repr(exc))

    threads = [threading.Thread(target=call) for _ in range(6)]
    for thread in threads:
        thread.start()
    time.sleep(0.8)  # all six are now inside the 2 s sleep
    os.kill(web.pid, signal.SIGTERM)
    for thread in threads:
        thread.join(timeout=30)
    assert results == [200] * 6
    assert web.wait(timeout=30) == 0


@pytest.mark.parametrize("server", SERVERS)
def test_readyz_follows_redis_while_healthz_stays_up(processes, server):
    port = free_port()
    redis_proc = processes.redis_server(port)
    _, url = processes.web(server, env={"REDIS_URL": f"redis://127.0.0.1:{port}/0"})

    def ready() -> requests.Response:
        return requests.get(f"{url}/readyz", timeout=10)

    assert ready().status_code == 200
    redis_proc.popen.kill()
    redis_proc.wait(timeout=10)

    down = ready()
    assert down.status_code == 503
    assert down.json()["checks"]["redis"].startswith("unavailable")
    assert down.json()["checks"]["database"] == "ok"
    assert requests.get(f"{url}/healthz", timeout=10).status_code == 200

    processes.redis_server(port, name="redis-again")
    wait_for(lambda: ready().status_code == 200, timeout=15, interval=0.3, what="/readyz back to 200")
    assert requests.get(f"{url}/healthz", timeout=10).status_code == 200


@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_probes_accept_pod_ip_host_under_production_settings(processes, path, server, tls_server, s3_server,
                                                             s3_bucket):
    env = {
        **s3_server.env(s3_bucket, "web"),
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        # Production verifies PostgreSQL's certificate (verify-full): a database with TLS.
        "DATABASE_URL": tls_server.url,
        "DATABASE_CA_BUNDLE": str(tls_server.ca_file),
        "DJANGO_SECRET_KEY": "k" * 20 + "-production-like-secret-key-for-tests-0123456789",
        "DJANGO_ALLOWED_HOSTS": "api.example.com",
        "API_IO_ENABLED": "true",
    }
    _, url = processes.web(server, env=env)
    response = requests.get(f"{url}{path}", headers={"Host": "10.0.3.7"}, timeout=10, allow_redirects=False)
    assert response.status_code == 200
    api = requests.get(f"{url}/api/io?ms=0", headers={"Host": "api.example.com"}, timeout=10,
                       allow_redirects=False)
    assert api.status_code == 301  # the ALB's plain-HTTP traffic is redirected to HTTPS


def keep_alive_get(conn: socket.socket, path: str) -> bytes:
    """One request on an open connection; returns the whole response (headers and body)."""
    conn.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        data += conn.recv(4096) or b"<closed>"
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
    while len(body) < length:
        body += conn.recv(4096)
    return data


IO_ON = {"API_IO_ENABLED": "true"}
"""/api/io (a request that sleeps) is off unless enabled, as in production."""


@pytest.mark.parametrize("server", SERVERS)
def test_idle_keep_alive_connections_do_not_hold_request_threads(processes, server):
    # Behind an ALB many connections sit idle for up to its idle timeout; with two threads,
    # two idle keep-alive connections must not keep a third client from being answered.
    _, url = processes.web(server, threads=2, env=IO_ON)
    port = int(url.rsplit(":", 1)[1])
    idle = []
    for _ in range(2):
        conn = socket.create_connection(("127.0.0.1", port), timeout=5)
        assert keep_alive_get(conn, "/api/io?ms=0").startswith(b"HTTP/1.1 200")
        idle.append(conn)
    third = requests.get(f"{url}/api/io", params={"ms": 0}, timeout=5)
    assert third.status_code == 200
    # and the idle connections were kept alive: usable again
    assert keep_alive_get(idle[0], "/api/io?ms=0").startswith(b"HTTP/1.1 200")
    for conn in idle:
        conn.close()


@pytest.mark.parametrize("server", SERVERS)
def test_an_idle_connection_is_kept_for_the_keep_alive_and_closed_after(processes, server):
    """WEB_KEEP_ALIVE_SECONDS is how long the server keeps an idle connection: the stack's rule
    that it exceed the ALB's idle timeout rests on this. granian has no idle timeout of its own:
    its ``--http1-header-read-timeout`` also runs while a kept connection waits for its next
    request (``granian --help``: "Sets a timeout (in milliseconds) to read headers"), which the
    launcher sets from WEB_KEEP_ALIVE_SECONDS (service/config/launch.py)."""
    keep_alive = 3
    _, url = processes.web(server, env={**IO_ON, "WEB_KEEP_ALIVE_SECONDS": str(keep_alive)})
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        assert keep_alive_get(conn, "/api/io?ms=0").startswith(b"HTTP/1.1 200")
        time.sleep(keep_alive / 3)
        assert keep_alive_get(conn, "/api/io?ms=0").startswith(b"HTTP/1.1 200")  # still kept
        time.sleep(keep_alive + 2)
        try:
            closed = conn.recv(1) == b""
        except ConnectionResetError:
            closed = True
        assert closed


def test_empty_gunicorn_accesslog_turns_the_access_log_off(processes):
    quiet, quiet_url = processes.web("gunicorn", name="web-quiet", env={"GUNICORN_ACCESSLOG": "", **IO_ON})
    logged, logged_url = processes.web("gunicorn", name="web-logged", env=IO_ON)
    for url in (quiet_url, logged_url):
        assert requests.get(f"{url}/api/io", params={"ms": 0}, timeout=5).status_code == 200
    # gunicorn's own access line (its default format: the request line as sent, quoted), not the
    # app's JSON access line, which both write.
    line = '"GET /api/io?ms=0 HTTP/1.1" 200'
    wait_for(lambda: line in logged.log(), timeout=5, what="the access log line")
    assert line not in quiet.log()
    assert '"path": "/api/io"' in quiet.log()
