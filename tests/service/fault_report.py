"""Bursts of jobs under faults, against real gunicorn, Celery, Redis and PostgreSQL processes.

    uv run python tests/service/fault_report.py [--jobs 50] [--scenario NAME ...]

For each fault (Redis killed, Redis frozen past the broker socket timeout, PostgreSQL
restarted, a worker SIGKILLed) it submits a burst of jobs from 8 clients, injects the
fault a second into the burst, and waits for every accepted job to end. It prints one row
per fault: submitted (accepted with 201), refused (the client retried them: 503 while Redis
was away, 500 while PostgreSQL was), done, failed, stuck (neither after the deadline),
duplicated (compressions that ran to the end twice, the second result discarded),
redelivered (jobs started more than once), worker restarts (what kubelet does for a worker
that exited or whose liveness probe fails, done here by a loop that reads the heartbeat files
as the probe does) and the time from the first submission until the last job ended.

Everything runs on private instances on free loopback ports: its own PostgreSQL
(initdb in a temporary directory) and its own redis-server per scenario, two workers,
gunicorn and the reconciler loop. The shared PostgreSQL and Redis are never touched.
"""

from __future__ import annotations

import argparse
import io
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import psycopg
import requests
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

from private_servers import PrivatePostgres  # noqa: E402
from service_processes import SERVICE_DIR, Proc, Processes, free_port, wait_for  # noqa: E402

from config import heartbeat  # noqa: E402

SOCKET_TIMEOUT = 5
"""The workers' broker socket timeout here; the freeze lasts longer than twice this."""
DEADLINE = 240
LIVENESS_MAX_AGE = 12
"""The liveness probe's --max-age here (60 s in the cluster, with heartbeats 5x as far apart)."""
LIVENESS_PERIOD = 2
CLIENTS = 8
ENV = {
    "CELERY_VISIBILITY_TIMEOUT": "900",
    "CELERY_TASK_TIME_LIMIT": "20",
    "CELERY_HEARTBEAT_INTERVAL": "2",
    "CELERY_BROKER_SOCKET_TIMEOUT": str(SOCKET_TIMEOUT),
    "JOBS_REQUEUE_QUEUED_AFTER": "10",
    "JOBS_REQUEUE_RUNNING_GRACE": "2",
    "JOBS_DB_RETRY_BACKOFF_MAX": "4",
    "DJANGO_LOG_LEVEL": "INFO",
}


def photo_png(width: int, height: int, *, seed: int) -> bytes:
    """A noisy image with smooth structure (compresses like a photograph), distinct per seed."""
    noise = Image.effect_noise((width, height), 40).convert("L")
    gradient = Image.linear_gradient("L").resize((width, height))
    mandel = Image.effect_mandelbrot((width, height), (-2.0 + seed * 0.01, -1.2, 0.8, 1.2), 40)
    out = io.BytesIO()
    Image.merge("RGB", (gradient, mandel, noise)).save(out, format="PNG")
    return out.getvalue()


@dataclass
class Row:
    fault: str
    submitted: int
    refused: int
    done: int
    failed: int
    stuck: int
    duplicated: int
    redelivered: int
    restarts: int
    seconds: float | None


class Rig:
    """One scenario's processes: Redis, gunicorn, two workers, the reconciler loop, and what
    kubelet does for the workers."""

    def __init__(self, processes: Processes, pg: PrivatePostgres) -> None:
        self.processes = processes
        self.pg = pg
        self.redis_port = free_port()
        self.redis = processes.redis_server(self.redis_port)
        self.env = {**ENV, "DATABASE_URL": pg.url, "REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/0"}
        _, self.url = processes.gunicorn(env=self.env)
        self.workers = [processes.worker(f"worker-{i}", env=self.env) for i in (1, 2)]
        processes.launch("reconciler", "reconcile", "--every", "1", env=self.env)
        self.restarts = 0
        self.stopping = threading.Event()
        self.kubelet = threading.Thread(target=self.keep_workers_live, daemon=True)
        self.kubelet.start()

    def live(self, worker: Proc) -> bool:
        if worker.popen.poll() is not None:
            return False
        try:
            return heartbeat.age_seconds(str(self.processes.tmp_path / f"{worker.name}.heartbeat")) <= LIVENESS_MAX_AGE
        except FileNotFoundError:
            return False

    def keep_workers_live(self) -> None:
        # restartPolicy Always plus the exec liveness probe: a worker that exited, or whose
        # heartbeat is stale, is stopped (SIGTERM, then SIGKILL after the grace) and started again.
        while not self.stopping.wait(LIVENESS_PERIOD):
            for index, worker in enumerate(self.workers):
                if self.stopping.is_set() or self.live(worker):
                    continue
                self.restarts += 1
                if worker.popen.poll() is None:
                    os.killpg(worker.pid, signal.SIGTERM)
                    try:
                        worker.wait(timeout=int(ENV["CELERY_TASK_TIME_LIMIT"]) + 5)
                    except Exception:  # noqa: BLE001 - past the grace, as kubelet does
                        os.killpg(worker.pid, signal.SIGKILL)
                self.workers[index] = self.processes.worker(f"worker-{index + 1}-{self.restarts}", env=self.env)

    def stop(self) -> None:
        self.stopping.set()
        self.kubelet.join(timeout=60)


def redis_killed(rig: Rig) -> None:
    rig.redis.popen.kill()
    rig.redis.wait(timeout=10)
    time.sleep(5)
    rig.redis = rig.processes.redis_server(rig.redis_port, name="redis-again")


def redis_frozen(rig: Rig) -> None:
    os.kill(rig.redis.pid, signal.SIGSTOP)
    time.sleep(SOCKET_TIMEOUT * 2 + 2)
    os.kill(rig.redis.pid, signal.SIGCONT)


def postgres_restarted(rig: Rig) -> None:
    rig.pg.stop()
    time.sleep(3)
    rig.pg.start()


def running_jobs(pg: PrivatePostgres) -> int:
    with psycopg.connect(pg.url.replace("postgres://", "postgresql://"), autocommit=True) as conn:
        (count,) = conn.execute("SELECT count(*) FROM jobs_job WHERE status = 'running'").fetchone()
    return count


def worker_killed(rig: Rig) -> None:
    victim = rig.workers[0]
    # Mid-job, as an OOM kill is: both workers (-c 1) are running a job, so the victim is too.
    wait_for(lambda: running_jobs(rig.pg) == len(rig.workers), timeout=30, interval=0.01,
             what="every worker busy with a job")
    os.killpg(victim.pid, signal.SIGKILL)  # OOM kill or node loss: parent and pool child
    victim.wait(timeout=10)  # the liveness loop starts it again


SCENARIOS: dict[str, Callable[[Rig], None]] = {
    "redis killed 5 s": redis_killed,
    f"redis frozen {SOCKET_TIMEOUT * 2 + 2} s": redis_frozen,
    "postgres restart": postgres_restarted,
    "worker SIGKILL": worker_killed,
}


def submit(url: str, image: bytes, refused: list[int]) -> str | None:
    """A well-behaved client: on 503 it waits and tries again, for up to a minute."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            response = requests.post(f"{url}/api/jobs", files={"image": ("p.png", image, "image/png")}, timeout=30)
        except requests.RequestException:
            response = None
        if response is not None and response.status_code == 201:
            return response.json()["id"]
        refused.append(response.status_code if response is not None else 0)
        time.sleep(1)
    return None


def run_scenario(name: str, fault: Callable[[Rig], None], pg: PrivatePostgres, jobs: int, workdir: Path) -> Row:
    with psycopg.connect(pg.url.replace("postgres://", "postgresql://"), autocommit=True) as conn:
        conn.execute("TRUNCATE jobs_jobresult, jobs_job")
    scenario_dir = workdir / name.replace(" ", "-")
    scenario_dir.mkdir()
    processes = Processes(tmp_path=scenario_dir, base_env={"DJANGO_SETTINGS_MODULE": "config.settings.local",
                                                          "PYTHONPATH": str(SERVICE_DIR)})
    rig = None
    try:
        rig = Rig(processes, pg)
        images = [photo_png(1024, 768, seed=i) for i in range(jobs)]
        refused: list[int] = []
        started = time.time()
        fault_thread = threading.Thread(target=lambda: (time.sleep(1), fault(rig)))
        fault_thread.start()
        with ThreadPoolExecutor(CLIENTS) as pool:
            ids = [i for i in pool.map(lambda img: submit(rig.url, img, refused), images) if i]
        fault_thread.join()
        states = wait_until_ended(pg, ids)
        duplicated = sum(p.log().count("discarding this result") for p in processes.procs)
    finally:
        if rig is not None:
            rig.stop()
        processes.stop_all()
    done = sum(1 for s in states.values() if s[0] == "done")
    failed = sum(1 for s in states.values() if s[0] == "failed")
    finished = [s[2] for s in states.values() if s[2] is not None]
    seconds = (max(finished).timestamp() - started) if finished and done + failed == len(ids) else None
    return Row(name, len(ids), len(refused), done, failed, len(ids) - done - failed, duplicated,
               sum(1 for s in states.values() if s[1] > 1), rig.restarts, seconds)


def wait_until_ended(pg: PrivatePostgres, ids: list[str]) -> dict[str, tuple]:
    def states() -> dict[str, tuple]:
        try:
            with psycopg.connect(pg.url.replace("postgres://", "postgresql://"), connect_timeout=2) as conn:
                rows = conn.execute("SELECT id::text, status, attempts, finished_at FROM jobs_job "
                                    "WHERE id::text = ANY(%s)", (ids,)).fetchall()
        except psycopg.OperationalError:
            return {}
        return {row[0]: row[1:] for row in rows}

    def all_ended() -> bool:
        current = states()
        return len(current) == len(ids) and all(v[0] in {"done", "failed"} for v in current.values())

    try:
        wait_for(all_ended, timeout=DEADLINE, interval=1, what="every job to end")
    except TimeoutError:
        pass
    return states()


def print_table(rows: list[Row]) -> None:
    header = ["fault", "submitted", "refused", "done", "failed", "stuck", "duplicated", "redelivered",
              "restarts", "last job ended"]
    cells = [[r.fault, r.submitted, r.refused, r.done, r.failed, r.stuck, r.duplicated, r.redelivered,
              r.restarts, f"{r.seconds:.1f} s" if r.seconds is not None else f"> {DEADLINE} s"] for r in rows]
    widths = [max(len(str(x)) for x in column) for column in zip(header, *cells, strict=True)]
    for line in [header, ["-" * w for w in widths], *cells]:
        print("  ".join(str(x).ljust(w) for x, w in zip(line, widths, strict=True)).rstrip())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--scenario", action="append", choices=list(SCENARIOS), help="default: all")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="fault-report-") as workdir:
        base = Processes(tmp_path=Path(workdir), base_env={"PYTHONPATH": str(SERVICE_DIR)})
        pg = PrivatePostgres(base)
        try:
            pg.start()
            migrate = base.launch("migrate", "migrate",
                                  env={"DATABASE_URL": pg.url, "DJANGO_SETTINGS_MODULE": "config.settings.local"})
            if migrate.wait(timeout=120) != 0:
                print(migrate.log(), file=sys.stderr)
                return 1
            for name in args.scenario or list(SCENARIOS):
                print(f"... {name}", file=sys.stderr, flush=True)
                rows.append(run_scenario(name, SCENARIOS[name], pg, args.jobs, Path(workdir)))
        finally:
            base.stop_all()
            pg.remove()
    print(f"{args.jobs} jobs per burst from {CLIENTS} clients, fault injected 1 s in; 2 workers (-c 1, "
          f"restarted when exited or their heartbeat is {LIVENESS_MAX_AGE} s old), "
          f"reconciler every 1 s (queued after {ENV['JOBS_REQUEUE_QUEUED_AFTER']} s, running after "
          f"time limit {ENV['CELERY_TASK_TIME_LIMIT']} s + {ENV['JOBS_REQUEUE_RUNNING_GRACE']} s), "
          f"visibility timeout {ENV['CELERY_VISIBILITY_TIMEOUT']} s")
    print_table(rows)
    return 0 if all(r.stuck == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
