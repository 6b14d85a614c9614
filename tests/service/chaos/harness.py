"""One fault, one burst: start the pod, submit jobs from several clients, inject the fault, wait
for every job to end, and judge the outcome against the criteria of issue 18."""

from __future__ import annotations

import io
import re
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psycopg
import requests
from PIL import Image
from s3_server import S3Server
from service_processes import wait_for

from chaos.faults import FAULTS, Servers
from chaos.pod import Pod, Timing

RECOVERY_LIMIT = 180.0
"""The last job must end within this many seconds of the fault's end."""
START_SHARE = 0.5
"""The fault starts once this share of the burst is accepted, so that the queue holds messages
(the kills wait, besides, for both workers to be running a job)."""
START_TIMEOUT = 120.0
CLIENT_PATIENCE = 120.0
"""A client retries a refused job for this long after the fault's end, then gives up."""
REQUEST_TIMEOUT = 90.0
"""Above the proxy's wait for the app (the app's timeout + 5 s)."""
DONE = re.compile(r"job (\S+) done:")
DISCARDED = re.compile(r"job (\S+) finished by another delivery, discarding")


def photo_png(width: int, height: int, *, seed: int) -> bytes:
    """A noisy image with smooth structure (compresses like a photograph), distinct per seed."""
    noise = Image.effect_noise((width, height), 40).convert("L")
    gradient = Image.linear_gradient("L").resize((width, height))
    mandel = Image.effect_mandelbrot((width, height), (-2.0 + seed * 0.01, -1.2, 0.8, 1.2), 40)
    out = io.BytesIO()
    Image.merge("RGB", (gradient, mandel, noise)).save(out, format="PNG")
    return out.getvalue()


@dataclass
class Outcome:
    fault: str
    what: str = ""
    submitted: int = 0
    accepted: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    """Answers other than 201 a client retried after, by status ("connection" for no answer)."""
    gave_up: int = 0
    jobs: int = 0
    """Rows in the database: accepted jobs plus any whose 201 never reached the client."""
    done: int = 0
    failed: int = 0
    stuck: int = 0
    duplicated: int = 0
    redelivered: int = 0
    restarts: list[dict[str, object]] = field(default_factory=list)
    healthy_restarts: int = 0
    fault_seconds: float = 0.0
    recovery_seconds: float | None = None
    """From the fault's end to the last job's end; None while some job has not ended."""
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    def judge(self) -> None:
        if self.stuck:
            self.failures.append(f"{self.stuck} stuck")
        if self.duplicated:
            self.failures.append(f"{self.duplicated} duplicated")
        if self.healthy_restarts:
            self.failures.append(f"{self.healthy_restarts} restarts of a healthy worker")
        if self.jobs == 0:
            self.failures.append("no job accepted")
        elif self.recovery_seconds is None or self.recovery_seconds > RECOVERY_LIMIT:
            self.failures.append(f"last job not done within {RECOVERY_LIMIT:.0f} s of the fault's end")

    def as_json(self) -> dict[str, object]:
        return {**asdict(self), "passed": self.passed}


class Clients:
    """`clients` well-behaved clients: on a refusal they wait (Retry-After, else 1 s) and retry."""

    def __init__(self, url: str, clients: int) -> None:
        self.url = url
        self.clients = clients
        self.refused: Counter[str] = Counter()
        self.accepted = 0
        self.gave_up = 0
        self.fault_over = threading.Event()
        self.fault_end = 0.0
        self._lock = threading.Lock()

    def submit_all(self, images: list[bytes]) -> list[str]:
        with ThreadPoolExecutor(self.clients) as pool:
            return [job for job in pool.map(self._submit, images) if job]

    def _submit(self, image: bytes) -> str | None:
        while True:
            try:
                response = requests.post(f"{self.url}/api/jobs", files={"image": ("p.png", image, "image/png")},
                                         timeout=REQUEST_TIMEOUT)
            except requests.RequestException:
                status, wait = "connection", 1.0
            else:
                if response.status_code == 201:
                    with self._lock:
                        self.accepted += 1
                    return response.json()["id"]
                status = str(response.status_code)
                wait = min(10.0, float(response.headers.get("Retry-After", "1") or 1))
            with self._lock:
                self.refused[status] += 1
            if self.fault_over.is_set() and time.time() - self.fault_end > CLIENT_PATIENCE:
                with self._lock:
                    self.gave_up += 1
                return None
            time.sleep(wait)


def job_states(database_url: str) -> dict[str, tuple]:
    try:
        with psycopg.connect(database_url, connect_timeout=3, autocommit=True) as conn:
            rows = conn.execute("SELECT id::text, status, attempts, extract(epoch FROM finished_at) "
                                "FROM jobs_job").fetchall()
    except psycopg.OperationalError:
        return {}
    return {row[0]: row[1:] for row in rows}


def run_fault(name: str, servers: Servers, timing: Timing, images: list[bytes], *, clients: int,
              deadline: float, workdir: Path) -> Outcome:
    """`deadline`: seconds after the fault's end when a job not ended counts as stuck."""
    outcome = Outcome(fault=name, submitted=len(images))
    with psycopg.connect(servers.database_url, autocommit=True) as conn:
        conn.execute("TRUNCATE jobs_jobresult, jobs_job, jobs_expiredjob")
    bucket = S3Server(url=servers.s3_url).create_bucket(f"chaos-{name}")
    scenario_dir = workdir / name
    scenario_dir.mkdir()
    pod = Pod(timing, scenario_dir, database_url=servers.database_url, s3_url=servers.s3_url, bucket=bucket)
    try:
        pod.start()
        submitter = Clients(pod.url, clients)
        fault_times: dict[str, float] = {}

        def inject() -> None:
            share = max(1, int(len(images) * START_SHARE))
            try:
                wait_for(lambda: submitter.accepted >= share, timeout=START_TIMEOUT, interval=0.05,
                         what=f"{share} jobs accepted")
            except TimeoutError:
                pass  # inject it anyway: the table shows what was accepted
            fault_times["start"] = time.time()
            try:
                outcome.what = FAULTS[name](pod, servers)
            finally:
                submitter.fault_end = fault_times["end"] = time.time()
                submitter.fault_over.set()

        fault = threading.Thread(target=inject, name=f"fault-{name}")
        fault.start()
        accepted = submitter.submit_all(images)
        fault.join()
        fault_end = fault_times["end"]
        outcome.fault_seconds = round(fault_end - fault_times["start"], 1)
        states = _wait_until_ended(servers.database_url, fault_end + deadline,
                                   settle_until=fault_end + timing.liveness_horizon())
        logs = pod.worker_logs()
        restarts = list(pod.kubelet.restarts)
    finally:
        pod.stop()
    outcome.accepted, outcome.refused, outcome.gave_up = len(accepted), dict(submitter.refused), submitter.gave_up
    outcome.jobs = len(states)
    outcome.done = sum(1 for s in states.values() if s[0] == "done")
    outcome.failed = sum(1 for s in states.values() if s[0] == "failed")
    outcome.stuck = outcome.jobs - outcome.done - outcome.failed
    outcome.redelivered = sum(1 for s in states.values() if s[1] > 1)
    outcome.duplicated = len(duplicated_jobs(logs))
    outcome.restarts = [{"container": r.container, "reason": r.reason, "after_fault_end": round(r.at - fault_end, 1),
                         "healthy": r.healthy, "why": r.why} for r in restarts]
    outcome.healthy_restarts = sum(1 for r in restarts if r.healthy)
    ended = [s[2] for s in states.values() if s[2] is not None]
    if ended and outcome.stuck == 0:
        outcome.recovery_seconds = round(max(0.0, float(max(ended)) - fault_end), 1)
    outcome.judge()
    return outcome


def duplicated_jobs(worker_logs: str) -> set[str]:
    """Jobs whose compression ran to the end more than once: stored twice, or a second result
    discarded because another delivery had finished the job."""
    done = Counter(DONE.findall(worker_logs))
    return {job for job, count in done.items() if count > 1} | set(DISCARDED.findall(worker_logs))


def _wait_until_ended(database_url: str, deadline: float, *, settle_until: float) -> dict[str, tuple]:
    """Polls until every job has ended and restarts a stale heartbeat would cause have had
    time to happen, or until the deadline."""
    while True:
        states = job_states(database_url)
        ended = bool(states) and all(s[0] in {"done", "failed"} for s in states.values())
        now = time.time()
        if (ended and now >= settle_until) or now >= deadline:
            return states if states else job_states(database_url)
        time.sleep(2)

