"""A worker stopped with a task running: jobs lost, jobs run twice, and the time it takes to leave.

    python -m benchmarks stop [--window S] [--short S] [--long S]

Per task length (short: ends within the window; long: runs past it) and per way a worker is
stopped: a rollout (a worker runs a job, another one is up and idle, as the new pod is, and the
busy one gets SIGTERM) and a KEDA scale-in (two workers each running a job, one gets SIGTERM). Each case runs twice: with the window
(``WORKER_SOFT_SHUTDOWN_SECONDS``) and without (``0``: Celery's warm shutdown alone, as before).
A task here is the job's compression preceded by a sleep (``STOP_TASK_SECONDS``), the stand-in for
a long task; the real compression takes a fraction of a second. A sleeping task is interrupted
at once; a task inside a long C call (Pillow) handles the stop when that call returns.

Needs PostgreSQL and Redis (``DATABASE_URL``, ``REDIS_URL``, as ``python -m benchmarks run``).
The tests (tests/service/test_worker_stop.py) run the same cases and assert on their figures.
"""

from __future__ import annotations

import io
import os
import re
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from benchmarks.http_load import free_port
from benchmarks.environment import LAUNCH, SERVICE_DIR, Backends, database_connect, database_ensure, service_env
from benchmarks.pods import Pod, machine_cpus

SCENARIOS = ("rollout", "scale-in")
STOP_TASK_SECONDS = "STOP_TASK_SECONDS"


@dataclass(frozen=True)
class StopResult:
    scenario: str
    task_seconds: float
    window: int
    submitted: int
    lost: int
    duplicated: int
    attempts: tuple[int, ...]
    leave_seconds: float

    def row(self) -> str:
        window = f"{self.window} s" if self.window else "none"
        return (f"{self.scenario:<9} {self.task_seconds:>6.1f} s {window:>7} {self.submitted:>5} {self.lost:>5} "
                f"{self.duplicated:>5} {','.join(map(str, self.attempts)):>9} {self.leave_seconds:>7.1f} s")


HEADER = f"{'stop':<9} {'task':>8} {'window':>7} {'jobs':>5} {'lost':>5} {'twice':>5} {'attempts':>9} {'leaves':>9}"


def image() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.linear_gradient("L").convert("RGB").resize((320, 240)).save(out, format="PNG")
    return out.getvalue()


class StopCase:
    """Worker pods (Celery with slowed tasks) against a running web server at `url`."""

    def __init__(self, backends: Backends, url: str, workdir: Path, *, env: dict[str, str] | None = None) -> None:
        self.backends, self.url, self.workdir = backends, url, workdir
        self.env = env or {}
        self.pods: list[Pod] = []

    def worker(self, name: str, *, task_seconds: float, window: int) -> Pod:
        heartbeat = self.workdir / f"{name}.heartbeat"
        env = service_env(self.backends, application_name=f"bench-stop-{name}", DJANGO_LOG_LEVEL="INFO",
                          CELERY_HEARTBEAT_FILE=str(heartbeat), WORKER_SOFT_SHUTDOWN_SECONDS=str(window),
                          **{STOP_TASK_SECONDS: str(task_seconds)}, **self.env)
        argv = [sys.executable, "-m", "benchmarks.worker_stop", "celery", "--hostname", f"{name}-{os.getpid()}@%h"]
        pod = Pod(name, argv, machine_cpus(), float(len(machine_cpus())), env, SERVICE_DIR,
                  self.workdir / f"{name}.log").start()
        self.pods.append(pod)
        pod.wait_until(lambda: "ready." in pod.log(), timeout=60, what="worker ready")
        return pod

    def submit(self) -> str:
        response = requests.post(f"{self.url}/api/jobs", files={"image": ("stop.png", image(), "image/png")},
                                 timeout=60)
        if response.status_code != 201:
            raise RuntimeError(f"submitting a job answered {response.status_code}: {response.text[:300]}")
        return response.json()["id"]

    def rows(self, job_ids: list[str]) -> dict[str, tuple[str, int]]:
        with database_connect(self.backends.database_url) as conn:
            found = conn.execute("SELECT id::text, status, attempts FROM jobs_job WHERE id = ANY(%s::uuid[])",
                                 (job_ids,)).fetchall()
        return {job_id: (status, attempts) for job_id, status, attempts in found}

    def wait(self, job_ids: list[str], statuses: set[str], *, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rows = self.rows(job_ids)
            if len(rows) == len(job_ids) and all(status in statuses for status, _ in rows.values()):
                return True
            time.sleep(0.05)
        return False

    def runs(self, job_id: str) -> int:
        """Compressions of the job that ran to their end, in every worker's log."""
        done = re.compile(rf"job {job_id} (done:|finished by another delivery)")
        return sum(len(done.findall(pod.log())) for pod in self.pods)

    def run(self, scenario: str, *, task_seconds: float, window: int) -> StopResult:
        """Two workers; one job (rollout: the other worker is idle, as a new pod is) or one job
        each (scale-in: the other worker is busy too). The worker running the first job gets
        SIGTERM."""
        # A log of each case's own: the busy worker is found by its log.
        case = f"{scenario}-{task_seconds:g}s-window{window}"
        pods = [self.worker(f"{case}-{name}", task_seconds=task_seconds, window=window) for name in "ab"]
        job_ids = [self.submit() for _ in range(2 if scenario == "scale-in" else 1)]
        if not self.wait(job_ids, {"running"}, timeout=60):
            raise TimeoutError(f"{scenario}: jobs {job_ids} not all running")
        stopped_pod = next(pod for pod in pods if "jobs.compress[" in pod.log())
        assert stopped_pod.popen is not None
        stopped = time.monotonic()
        os.kill(stopped_pod.pid, signal.SIGTERM)  # the kubelet signals the container's main process only
        stopped_pod.popen.wait(timeout=task_seconds + window + 60)
        leave = time.monotonic() - stopped
        self.wait(job_ids, {"done", "failed"}, timeout=2 * task_seconds + 60)
        rows = self.rows(job_ids)
        lost = sum(1 for job_id in job_ids if rows.get(job_id, ("", 0))[0] != "done")
        duplicated = sum(1 for job_id in job_ids if self.runs(job_id) > 1)
        attempts = tuple(sorted(rows.get(job_id, ("", 0))[1] for job_id in job_ids))
        self.stop()
        return StopResult(scenario, task_seconds, window, len(job_ids), lost, duplicated, attempts, leave)

    def stop(self) -> None:
        for pod in self.pods:
            pod.stop(timeout=5)
        self.pods = []


def measure(window: int, short: float, long: float) -> int:
    backends = Backends.from_environment()
    database_ensure(backends)
    workdir = Path(tempfile.mkdtemp(prefix="bench-stop-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    web = Pod("stop-web", [*LAUNCH, "web"], machine_cpus(), float(len(machine_cpus())),
              service_env(backends, application_name="bench-stop-web", WEB_SERVER="gunicorn",
                          WEB_BIND=f"127.0.0.1:{port}"), SERVICE_DIR, workdir / "web.log").start()

    def up() -> bool:
        try:
            return requests.get(f"{url}/healthz", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    case = StopCase(backends, url, workdir)
    try:
        web.wait_until(up, timeout=60, what="web /healthz")
        print(HEADER, flush=True)
        for task_seconds in (short, long):
            for scenario in SCENARIOS:
                for case_window in (0, window):
                    print(case.run(scenario, task_seconds=task_seconds, window=case_window).row(), flush=True)
    finally:
        case.stop()
        web.stop()
    print(f"logs in {workdir}; 'leaves': SIGTERM to the worker's exit; 'twice': jobs compressed more than once")
    return 0


def slowed_celery(argv: list[str]) -> int:
    """The launcher's worker command, run in this process with each compression slowed down by
    ``STOP_TASK_SECONDS`` (patched before the pool forks, so the children inherit it)."""
    import jobs.imaging
    from config import launch

    seconds = float(os.environ[STOP_TASK_SECONDS])
    recompress = jobs.imaging.image_recompress

    def slowed(**kwargs):
        time.sleep(seconds)
        return recompress(**kwargs)

    jobs.imaging.image_recompress = slowed
    from celery.bin.celery import main

    sys.argv = ["celery", *launch.command("worker", os.environ, argv)[1:]]
    return main()


if __name__ == "__main__" and sys.argv[1:2] == ["celery"]:
    sys.exit(slowed_celery(sys.argv[2:]))
