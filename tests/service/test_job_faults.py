"""Every accepted job ends done or failed, once, in bounded time: real gunicorn, Celery,
Redis and PostgreSQL processes, with the faults a cluster sees (killed, frozen and
restarted dependencies, killed workers)."""

import os
import signal
import subprocess
import sys
import time

import pytest
import requests
from conftest import encode, job_stored, photo_like
from memory_limit import CgroupMemoryLimit, RssMemoryLimit, children, rss_mib
from PIL import Image
from private_servers import PrivatePostgres
from s3_server import refused_by_role
from service_processes import SERVICE_DIR, free_port, wait_for

from config.launch import SERVERS
from jobs.models import Job

# Short limits for a test, keeping the settings' rule (time limit below visibility timeout).
# The visibility timeout is far longer than any test: a lost job must come back sooner.
FAST = {"CELERY_VISIBILITY_TIMEOUT": "600", "CELERY_TASK_TIME_LIMIT": "8", "CELERY_HEARTBEAT_INTERVAL": "1",
        "JOBS_REQUEUE_QUEUED_AFTER": "3", "JOBS_REQUEUE_RUNNING_GRACE": "1", "JOBS_DB_RETRY_BACKOFF_MAX": "2",
        # A killed worker's job comes back once its lease runs out (renewed every second here).
        "JOBS_LEASE_SECONDS": "3",
        # A queue of this run's own: a worker of another run on the same Redis database takes
        # messages from "jobs", skips them (their rows are in its database) and the jobs here
        # stay queued or run on a worker the test does not control.
        "CELERY_QUEUE": f"faults-{os.getpid()}"}


def submit(url: str, data: bytes) -> str:
    response = requests.post(f"{url}/api/jobs", files={"image": ("photo.png", data, "image/png")}, timeout=60)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def statuses(url: str, job_ids: list[str]) -> dict[str, dict]:
    return {job_id: requests.get(f"{url}/api/jobs/{job_id}", timeout=10).json() for job_id in job_ids}


def wait_finished(url: str, job_ids: list[str], timeout: float) -> dict[str, dict]:
    def finished():
        try:
            bodies = statuses(url, job_ids)
        except (requests.RequestException, ValueError):
            return None
        return bodies if all(b["status"] in {"done", "failed"} for b in bodies.values()) else None

    try:
        return wait_for(finished, timeout=timeout, interval=0.5, what=f"{len(job_ids)} jobs to finish")
    except TimeoutError:
        left = {k: v["status"] for k, v in statuses(url, job_ids).items() if v["status"] not in {"done", "failed"}}
        raise AssertionError(f"jobs still unfinished after {timeout}s: {left}") from None


def reconciler(processes, env: dict[str, str], every: float = 1.0):
    return processes.launch("reconciler", "reconcile", "--every", str(every), env=env)


@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize("fault", ["killed", "frozen"])
def test_post_while_redis_is_unreachable_is_a_fast_503_and_stores_nothing(processes, fault, server, s3_server,
                                                                         s3_bucket):
    port = free_port()
    redis_proc = processes.redis_server(port)
    _, url = processes.web(server, env={"REDIS_URL": f"redis://127.0.0.1:{port}/0",
                                        **s3_server.env(s3_bucket, "web")})
    before = Job.objects.count()
    if fault == "killed":
        redis_proc.popen.kill()
        redis_proc.wait(timeout=10)
    else:
        os.kill(redis_proc.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        response = requests.post(f"{url}/api/jobs", files={"image": ("a.png", encode(photo_like(64, 48)))},
                                 timeout=120)
        elapsed = time.monotonic() - started
    finally:
        if fault == "frozen":
            os.kill(redis_proc.pid, signal.SIGCONT)
    print(f"{server}: POST with Redis {fault}: {response.status_code} in {elapsed:.2f}s")
    assert response.status_code == 503, response.text[:300]
    assert response.json()["error"] == "queue_unavailable"
    assert elapsed < 5  # about 2 s; before: 500 after 3 s (killed), after 32 s (frozen)
    assert Job.objects.count() == before  # no job that nothing would ever run
    # and no upload: the web stored it, then deleted it when it withdrew the job
    assert s3_server.keys(s3_bucket) == []
    assert [call.operation for call in s3_server.calls_on(s3_bucket)] == ["PutObject", "DeleteObject"]
    assert list(refused_by_role(s3_server.calls_on(s3_bucket))) == []


def test_job_committed_but_never_published_is_run_by_the_reconciler(processes):
    # The web process died between the commit and the publish: a row, and no message.
    data = encode(photo_like(320, 240))
    job = job_stored(data, 320, 240)
    _, url = processes.gunicorn(env=FAST)
    processes.worker(env=FAST)
    reconciler(processes, FAST)
    body = wait_finished(url, [str(job.id)], timeout=40)[str(job.id)]
    assert body["status"] == "done" and body["attempts"] == 1, body


def test_worker_killed_mid_job_is_requeued_long_before_the_visibility_timeout(processes):
    _, url = processes.gunicorn(env=FAST)
    first = processes.worker("worker-1", env=FAST, slow_job_seconds=4)
    job_ids = [submit(url, encode(photo_like(320, 240))) for _ in range(2)]
    wait_for(lambda: Job.objects.filter(pk__in=job_ids, status="running").exists(), timeout=20, interval=0.05,
             what="a job running")
    os.killpg(first.pid, signal.SIGKILL)  # OOM kill or node loss: parent and child at once
    first.wait(timeout=10)
    killed_at = time.monotonic()
    processes.worker("worker-2", env=FAST)
    reconciler(processes, FAST)
    bodies = wait_finished(url, job_ids, timeout=60)
    print(f"worker SIGKILL: all jobs ended {time.monotonic() - killed_at:.1f}s after the kill "
          f"(visibility timeout {FAST['CELERY_VISIBILITY_TIMEOUT']}s)")
    assert {b["status"] for b in bodies.values()} == {"done"}
    assert sorted(b["attempts"] for b in bodies.values()) == [1, 2]


def test_job_that_kills_its_worker_every_time_fails_after_the_attempt_limit(processes):
    env = {**FAST, "JOBS_MAX_ATTEMPTS": "3"}
    _, url = processes.gunicorn(env=env)
    worker = processes.worker(env=env)
    # Decoding 6000x5000 RGBA takes 115 MiB, twice over; a small job takes a few MiB.
    bomb = encode(Image.new("RGBA", (6000, 5000), (10, 20, 30, 255)), "PNG")
    limit: CgroupMemoryLimit | RssMemoryLimit | None = CgroupMemoryLimit.create(limit_mib=100)
    if limit is not None:
        # The kernel's limit on what the worker allocates from now on, parent and pool children
        # alike (children forked later join with their parent), as in the worker's container.
        limit.join([worker.pid, *children(worker.pid)])
    else:
        limit = RssMemoryLimit(worker.pid, limit_mib=max(rss_mib(c) for c in children(worker.pid)) + 100)
    try:
        job_id = submit(url, bomb)
        small = submit(url, encode(photo_like(320, 240)))
        bodies = wait_finished(url, [job_id, small], timeout=90)
        kills = limit.kills()
    finally:
        limit.remove()
    body = bodies[job_id]
    print(f"poison job under {limit}: {kills} kills, then {body['status']}: {body['error']}")
    assert body["status"] == "failed", body
    assert "gave up after 3 attempts" in body["error"]
    assert kills == 3
    assert worker.popen.poll() is None  # the kernel took the pool child, never the worker itself
    assert bodies[small]["status"] == "done"  # the queue behind it kept moving


@pytest.fixture
def private_postgres(processes):
    pg = PrivatePostgres(processes)
    pg.start()
    yield pg
    processes.stop_all()
    pg.remove()


def test_postgres_restart_leaves_no_job_stuck_queued(processes, private_postgres, tmp_path):
    pg = private_postgres
    env = {**FAST, "DATABASE_URL": pg.url}
    migrate = processes.launch("migrate", "migrate", env=env)
    assert migrate.wait(timeout=120) == 0, migrate.log()
    _, url = processes.gunicorn(env=env)
    job_ids = [submit(url, encode(photo_like(160, 120, seed=i))) for i in range(8)]

    pg.stop()
    # Workers come up during the outage and meet a queue full of jobs they cannot load.
    worker = processes.worker(env=env)
    # The worker holds its message for the retry's countdown: that is waiting, not stranded, and
    # its liveness heartbeat (every second here) goes on.
    heartbeat = tmp_path / "worker.heartbeat"
    ages = []
    for _ in range(12):
        time.sleep(0.5)
        ages.append(time.time() - heartbeat.stat().st_mtime)
    assert "Retry in" in worker.log()
    assert max(ages) < 3, f"heartbeat ages during the outage: {ages}"
    pg.start()
    bodies = wait_finished(url, job_ids, timeout=90)
    assert {b["status"] for b in bodies.values()} == {"done"}, {k: b["status"] for k, b in bodies.items()}


def test_worker_recovers_or_exits_after_redis_freezes_past_the_socket_timeout(processes, tmp_path):
    port = free_port()
    redis_proc = processes.redis_server(port)
    socket_timeout = int(os.environ.get("FREEZE_SOCKET_TIMEOUT", "2"))
    env = {**FAST, "REDIS_URL": f"redis://127.0.0.1:{port}/0", "CELERY_BROKER_SOCKET_TIMEOUT": str(socket_timeout)}
    _, url = processes.gunicorn(env=env)
    worker = processes.worker(env=env, slow_job_seconds=2)
    first = submit(url, encode(photo_like(160, 120)))
    wait_finished(url, [first], timeout=30)

    second = submit(url, encode(photo_like(160, 120, seed=1)))
    wait_for(lambda: Job.objects.filter(pk=second, status="running").exists(), timeout=20, interval=0.05,
             what="the job running")
    os.kill(redis_proc.pid, signal.SIGSTOP)  # frozen, not killed: sockets stay open, nothing answers
    time.sleep(socket_timeout * 4)
    os.kill(redis_proc.pid, signal.SIGCONT)
    third = submit(url, encode(photo_like(160, 120, seed=2)))

    heartbeat = tmp_path / "worker.heartbeat"
    probe = [sys.executable, "-m", "config.heartbeat", "--max-age", "10", "--file", str(heartbeat)]

    def live() -> bool:
        return subprocess.run(probe, cwd=SERVICE_DIR, capture_output=True).returncode == 0

    # Either the worker consumes again, or kubelet learns it must restart it (it exited,
    # or its liveness probe fails): never alive-and-idle with work waiting.
    def resolved():
        job = Job.objects.get(pk=third)
        if job.status == "done":
            return "consumed"
        if worker.popen.poll() is not None:
            return "exited"
        if not live():
            return "liveness failing"
        return None

    outcome = wait_for(resolved, timeout=60, interval=1, what="the worker to consume again or be restartable")
    print(f"Redis frozen {socket_timeout * 4} s (socket timeout {socket_timeout} s): {outcome}")
    if outcome != "consumed":
        # What kubelet would do: start a new worker, which must finish everything.
        processes.worker("worker-after", env=env)
    reconciler(processes, env)
    bodies = wait_finished(url, [second, third], timeout=60)
    assert {b["status"] for b in bodies.values()} == {"done"}
