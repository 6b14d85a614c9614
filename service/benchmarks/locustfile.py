"""The workloads, as Locust users: the benchmark runs them one at a time, `make load` against a stack.

- ``IoUser``: ``GET /api/io?ms=BENCH_IO_MS`` (default 50), a stand-in for an upstream call.
- ``DbUser``: ``GET /api/jobs/<id>``, a database read and JSON; the job is BENCH_JOB_ID or
  one this user submits first.
- ``JobsUser``: submits an image of the corpus and polls it until done; the time from submit
  to done is reported as the request ``JOB submit-to-done``.

Every user holds one keep-alive connection (FastHttpUser). ``BENCH_USER_RATE`` (requests, or
jobs, per second per user) caps the rate; without it users send as fast as answers come.
"""

import os
import time

import gevent

from locust import FastHttpUser, constant, constant_throughput, task
from locust.exception import StopUser

from benchmarks.corpus import corpus

IO_MS = int(os.environ.get("BENCH_IO_MS", "50"))
JOB_POLL_SECONDS = 0.25
JOB_TIMEOUT_SECONDS = 300


def _wait_time():  # type: ignore[no-untyped-def]
    rate = float(os.environ.get("BENCH_USER_RATE") or 0)
    return constant_throughput(rate) if rate > 0 else constant(0)


class IoUser(FastHttpUser):
    wait_time = _wait_time()

    @task
    def io(self) -> None:
        self.client.get(f"/api/io?ms={IO_MS}", name="/api/io")


class DbUser(FastHttpUser):
    wait_time = _wait_time()
    job_id = os.environ.get("BENCH_JOB_ID", "")

    def on_start(self) -> None:
        if not self.job_id:
            response = self.client.post("/api/jobs", files={"image": ("corpus.jpg", corpus()[0], "image/jpeg")},
                                        name="/api/jobs (setup)")
            if response.status_code != 201:
                raise StopUser()
            self.job_id = response.json()["id"]

    @task
    def job(self) -> None:
        self.client.get(f"/api/jobs/{self.job_id}", name="/api/jobs/<id>")


class JobsUser(FastHttpUser):
    wait_time = _wait_time()
    submitted = 0

    @task
    def submit_and_wait(self) -> None:
        image = corpus()[self.submitted % len(corpus())]
        self.submitted += 1
        start = time.perf_counter()
        with self.client.post("/api/jobs", files={"image": ("corpus.jpg", image, "image/jpeg")},
                              name="/api/jobs", catch_response=True) as response:
            if response.status_code != 201:
                response.failure(f"submit answered {response.status_code}: {response.text[:200]}")
                return
            job_id = response.json()["id"]
        status, error = "queued", None
        while time.perf_counter() - start < JOB_TIMEOUT_SECONDS:
            time.sleep(JOB_POLL_SECONDS)
            poll = self.client.get(f"/api/jobs/{job_id}", name="/api/jobs/<id> (poll)")
            if poll.status_code == 200:
                status = poll.json()["status"]
                if status in {"done", "failed"}:
                    break
        else:
            error = f"job {job_id} not done after {JOB_TIMEOUT_SECONDS}s"
        if status == "failed":
            error = f"job {job_id} failed"
        self.environment.events.request.fire(
            request_type="JOB", name="submit-to-done", response_time=(time.perf_counter() - start) * 1000,
            response_length=0, exception=RuntimeError(error) if error else None, context={})


# Locust arms its --run-time timer on gevent's cached loop clock, which is stale by however long
# the imports above took (seconds on a busy machine): refresh it, or the run ends that much early.
gevent.get_hub().loop.update_now()
