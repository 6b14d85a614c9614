"""The job workload: a burst of compression jobs through the real web and Celery workers, per worker shape."""

import os
import resource
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
import requests

from benchmarks.corpus import corpus
from benchmarks.environment import LAUNCH, SERVICE_DIR, Backends, backend_pids, database_connect, service_env
from benchmarks.pods import Pod, process_cpu_seconds

SUBMITTERS = 4
PATH_PARTS = ("worker", "web", "database", "broker", "load_generator")
"""The CPU a job takes on its way, per process (time_per_job_ms keys): the whole path's limit."""
JOB_TIMEOUT_SECONDS = 600


@dataclass(frozen=True)
class WorkerShape:
    pods: int
    concurrency: int
    cpus_per_pod: float

    @property
    def name(self) -> str:
        return f"{self.pods} pod{'s' if self.pods > 1 else ''} x -c {self.concurrency}"


def pillow_cpu_seconds_per_job(images: tuple[bytes, ...], passes: int) -> float:
    """CPU seconds of the compression alone (Pillow, one core), over the corpus as the burst submits it."""
    from django.conf import settings

    from jobs.imaging import image_recompress

    affinity = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {max(affinity)})  # one core, as a `-c 1` pool child has
    try:
        image_recompress(data=images[0], max_dimension=settings.JOBS_OUTPUT_MAX_DIMENSION,
                         quality=settings.JOBS_OUTPUT_QUALITY)  # warm: codecs loaded
        start = time.process_time()
        for _ in range(passes):
            for data in images:
                image_recompress(data=data, max_dimension=settings.JOBS_OUTPUT_MAX_DIMENSION,
                                 quality=settings.JOBS_OUTPUT_QUALITY)
        return (time.process_time() - start) / (passes * len(images))
    finally:
        os.sched_setaffinity(0, affinity)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    return statistics.quantiles(ordered, n=100, method="inclusive")[int(q) - 1]


def _own_cpu_seconds() -> float:
    """This process's CPU: the load generator (the submitters and the poller), on the same cores."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class JobBench:
    """One web pod (the image's default server, as deployed) and, per shape, its worker pods."""

    def __init__(self, backends: Backends, cpu_ids: list[int], workdir: Path, *, web_port: int) -> None:
        self.backends = backends
        self.cpu_ids = cpu_ids
        self.workdir = workdir
        self.url = f"http://127.0.0.1:{web_port}"
        # The web pod is not what this workload measures: it may use every core, as the bench does.
        self.web = Pod("jobs-web", [*LAUNCH, "web"], cpu_ids, float(len(cpu_ids)),
                       service_env(backends, application_name="bench-jobs-web", WEB_BIND=f"127.0.0.1:{web_port}"),
                       SERVICE_DIR,
                       workdir / "jobs-web.log")
        self.job_ids: list[str] = []

    def __enter__(self) -> "JobBench":
        self.web.start()
        self.web.wait_until(self._web_up, timeout=60, what="web /healthz")
        return self

    def __exit__(self, *exc: object) -> None:
        self.web.stop()
        self._forget_jobs()

    def _web_up(self) -> bool:
        try:
            return requests.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def _worker_pods(self, shape: WorkerShape) -> list[Pod]:
        pods = []
        cores_each = max(1, round(shape.cpus_per_pod + 0.499))
        for index in range(shape.pods):
            first = index * cores_each
            cpu_ids = [self.cpu_ids[(first + k) % len(self.cpu_ids)] for k in range(cores_each)]
            heartbeat = Path(tempfile.gettempdir()) / f"bench-{id(self)}-worker-{index}.heartbeat"
            argv = [*LAUNCH, "worker", "--hostname", f"bench-{id(self)}-{index}@%h"]
            env = service_env(self.backends, application_name=f"bench-jobs-worker-{index}",
                              CELERY_HEARTBEAT_FILE=str(heartbeat), WORKER_CONCURRENCY=str(shape.concurrency))
            pods.append(Pod(f"worker-{index}", argv, cpu_ids, shape.cpus_per_pod, env, SERVICE_DIR,
                            self.workdir / f"{shape.name.replace(' ', '')}-worker-{index}.log"))
        return pods

    def _submit(self, images: list[bytes]) -> list[tuple[str, float]]:
        def one(data: bytes) -> tuple[str, float]:
            started = time.time()
            response = requests.post(f"{self.url}/api/jobs", files={"image": ("corpus.jpg", data, "image/jpeg")},
                                     timeout=60)
            if response.status_code != 201:
                raise RuntimeError(f"submitting a job answered {response.status_code}: {response.text[:300]}")
            return response.json()["id"], started

        with ThreadPoolExecutor(SUBMITTERS) as pool:
            submitted = list(pool.map(one, images))
        self.job_ids += [job_id for job_id, _ in submitted]
        return submitted

    def _wait_done(self, job_ids: list[str]) -> dict[str, tuple[Any, Any, Any]]:
        deadline = time.monotonic() + JOB_TIMEOUT_SECONDS
        with database_connect(self.backends.database_url) as conn:
            while True:
                rows = conn.execute(
                    "SELECT id::text, status, created_at, started_at, finished_at, error FROM jobs_job "
                    "WHERE id = ANY(%s::uuid[])", (job_ids,)).fetchall()
                failed = [row for row in rows if row[1] == "failed"]
                if failed:
                    raise RuntimeError(f"job {failed[0][0]} failed: {failed[0][5]}")
                if len(rows) == len(job_ids) and all(row[1] == "done" for row in rows):
                    return {row[0]: (row[2], row[3], row[4]) for row in rows}
                if time.monotonic() > deadline:
                    raise TimeoutError(f"jobs not done after {JOB_TIMEOUT_SECONDS}s")
                time.sleep(0.1)

    def _database_cpu(self) -> dict[int, float]:
        if not self.backends.database_is_local:
            return {}
        return {pid: process_cpu_seconds(pid) for pid in backend_pids(self.backends, "bench-jobs-")}

    def _broker_cpu(self) -> float | None:
        """Redis's own CPU (INFO cpu), when it runs on this machine: None otherwise."""
        if not self.backends.redis_is_local:
            return None
        client = redis.Redis.from_url(self.backends.redis_url, socket_connect_timeout=5)
        try:
            info = client.info("cpu")
        finally:
            client.close()
        return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])

    def measure(self, shape: WorkerShape, *, burst: int, pillow_s: float) -> dict[str, Any]:
        pods = self._worker_pods(shape)
        images = list(corpus())
        try:
            for pod in pods:
                pod.start()
            for pod in pods:
                pod.wait_until(lambda pod=pod: "ready." in pod.log(), timeout=90, what="celery ready")
            # Warm-up: each worker process has imported Pillow and opened its database connection.
            warm = self._submit(images[: shape.pods * shape.concurrency])
            self._wait_done([job_id for job_id, _ in warm])

            cpu_before = {pod.name: pod.cpu_seconds() for pod in pods}
            wait_before = {pod.name: pod.runqueue_wait_seconds() for pod in pods}
            web_before = self.web.cpu_seconds()
            db_before = self._database_cpu()
            broker_before = self._broker_cpu()
            own_before = _own_cpu_seconds()
            start = time.time()
            submitted = self._submit([images[i % len(images)] for i in range(burst)])
            done = self._wait_done([job_id for job_id, _ in submitted])
            worker_cpu = sum(pod.cpu_seconds() - cpu_before[pod.name] for pod in pods)
            worker_wait = sum(pod.runqueue_wait_seconds() - wait_before[pod.name] for pod in pods)
            web_cpu = self.web.cpu_seconds() - web_before
            db_after = self._database_cpu()
            broker_after = self._broker_cpu()
            own_cpu = _own_cpu_seconds() - own_before
        finally:
            for pod in pods:
                pod.stop()
        finished = max(row[2] for row in done.values()).timestamp()
        elapsed = finished - start
        submit_to_done = [(done[job_id][2].timestamp() - sent) * 1000 for job_id, sent in submitted]
        queue_wait = [(row[1] - row[0]).total_seconds() * 1000 for row in done.values()]
        jobs_per_s = burst / elapsed
        cores = shape.pods * shape.cpus_per_pod
        limit = cores / pillow_s
        split = {
            "pillow": round(pillow_s * 1000, 1),
            "worker": round(worker_cpu / burst * 1000, 1),
            "web": round(web_cpu / burst * 1000, 1),
        }
        if db_before or db_after:
            db_cpu = sum(cpu - db_before.get(pid, 0.0) for pid, cpu in db_after.items())
            split["database"] = round(db_cpu / burst * 1000, 1)
        if broker_before is not None and broker_after is not None:
            split["broker"] = round((broker_after - broker_before) / burst * 1000, 1)
        split["load_generator"] = round(own_cpu / burst * 1000, 1)
        # The whole path on this machine: every process a job takes CPU in shares its cores (the
        # local file storage's CPU is in the web and worker pods' system time).
        path_ms = sum(split.get(part) or 0.0 for part in PATH_PARTS)
        path_limit = len(self.cpu_ids) * 1000 / path_ms
        split["queue_wait_p50"] = round(percentile(queue_wait, 50), 1)
        # Runnable but not running: the worker pods' cores were busy with other processes.
        split["worker_cpu_wait"] = round(worker_wait / burst * 1000, 1)
        return {
            "shape": shape.name, "pods": shape.pods, "concurrency": shape.concurrency,
            "cpus_per_pod": shape.cpus_per_pod, "jobs": burst,
            "jobs_per_s": round(jobs_per_s, 3), "cpu_s_per_job": round(pillow_s, 4),
            "limit_jobs_per_s": round(limit, 3), "ratio": round(jobs_per_s / limit, 3),
            "limit_path_jobs_per_s": round(path_limit, 3), "ratio_path": round(jobs_per_s / path_limit, 3),
            "cpu_efficiency": round(pillow_s / (worker_cpu / burst), 3),
            "submit_to_done_ms": {"p50": round(percentile(submit_to_done, 50), 1),
                                  "p95": round(percentile(submit_to_done, 95), 1)},
            "time_per_job_ms": split,
        }

    def _forget_jobs(self) -> None:
        """The benchmark's jobs are not data anyone keeps: remove them (their results go with them)."""
        if not self.job_ids:
            return
        with database_connect(self.backends.database_url) as conn:
            conn.execute("DELETE FROM jobs_jobresult WHERE job_id = ANY(%s::uuid[])", (self.job_ids,))
            conn.execute("DELETE FROM jobs_job WHERE id = ANY(%s::uuid[])", (self.job_ids,))
