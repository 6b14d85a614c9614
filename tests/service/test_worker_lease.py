"""A running job is bounded by how long its worker has been gone, not by the task time limit;
a database outage in the middle of a job does not use up an attempt. Real gunicorn, Celery,
reconciler and (private) PostgreSQL processes.

The worker renews the job's lease (``JOBS_LEASE_SECONDS``) while the job runs; the reconciler
requeues a job whose lease ran out. Before, a SIGKILLed worker's job stayed ``running`` for
the task time limit plus ``JOBS_REQUEUE_RUNNING_GRACE`` plus a pass (6.8 minutes in production).
"""

import os
import signal
import time

import requests
from conftest import encode, photo_like
from service_processes import wait_for
from test_job_faults import FAST, private_postgres, reconciler, submit, wait_finished  # noqa: F401 - a fixture

# A time limit and grace far longer than the test may take: only the lease can bring the job back.
LONG_LIMIT = {**FAST, "CELERY_TASK_TIME_LIMIT": "120", "JOBS_REQUEUE_RUNNING_GRACE": "60", "JOBS_LEASE_SECONDS": "3"}


def job_status(url: str, job_id: str) -> dict:
    return requests.get(f"{url}/api/jobs/{job_id}", timeout=10).json()


def test_a_killed_workers_job_comes_back_after_its_lease_not_the_time_limit(processes):
    _, url = processes.gunicorn(env=LONG_LIMIT)
    first = processes.worker("worker-1", env=LONG_LIMIT, slow_job_seconds=4)
    job_id = submit(url, encode(photo_like(320, 240)))
    wait_for(lambda: job_status(url, job_id)["status"] == "running", timeout=30, interval=0.1, what="the job running")
    os.killpg(first.pid, signal.SIGKILL)  # OOM kill or node loss: parent and child at once
    first.wait(timeout=10)
    killed_at = time.monotonic()
    processes.worker("worker-2", env=LONG_LIMIT)
    reconciler(processes, LONG_LIMIT)
    # Within the time limit; before, it came back only after the time limit plus the grace.
    body = wait_finished(url, [job_id], timeout=float(LONG_LIMIT["CELERY_TASK_TIME_LIMIT"]))[job_id]
    elapsed = time.monotonic() - killed_at
    print(f"worker SIGKILL: job done {elapsed:.1f}s after the kill (lease {LONG_LIMIT['JOBS_LEASE_SECONDS']}s, "
          f"time limit {LONG_LIMIT['CELERY_TASK_TIME_LIMIT']}s)")
    assert (body["status"], body["attempts"]) == ("done", 2), body


def test_a_long_job_keeps_its_lease_and_runs_once(processes):
    # A job running several lease lengths is never given to a second worker.
    _, url = processes.gunicorn(env=LONG_LIMIT)
    processes.worker("worker-1", env=LONG_LIMIT, slow_job_seconds=10)
    processes.worker("worker-2", env=LONG_LIMIT, slow_job_seconds=10)
    reconciler(processes, LONG_LIMIT)
    job_id = submit(url, encode(photo_like(320, 240)))
    body = wait_finished(url, [job_id], timeout=90)[job_id]
    assert (body["status"], body["attempts"]) == ("done", 1), body


def test_a_database_outage_mid_job_does_not_use_up_an_attempt(processes, private_postgres):
    pg = private_postgres
    env = {**FAST, "DATABASE_URL": pg.url}
    migrate = processes.launch("migrate", "migrate", env=env)
    assert migrate.wait(timeout=120) == 0, migrate.log()
    _, url = processes.gunicorn(env=env)
    worker = processes.worker(env=env, slow_job_seconds=4)
    job_id = submit(url, encode(photo_like(320, 240)))
    wait_for(lambda: job_status(url, job_id)["status"] == "running", timeout=30, interval=0.1, what="the job running")
    pg.stop()  # while the job is being compressed: it cannot record its result
    time.sleep(6)
    pg.start()
    body = wait_finished(url, [job_id], timeout=90)[job_id]
    assert "Retry in" in worker.log()  # the outage did reach the job
    assert (body["status"], body["attempts"]) == ("done", 1), body
