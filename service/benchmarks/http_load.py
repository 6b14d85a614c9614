"""The HTTP workloads: one web server pod per shape, loaded by Locust at a fixed concurrency."""

import csv
import http.client
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import requests

from benchmarks.corpus import corpus
from benchmarks.environment import BIN_DIR, LAUNCH, SERVICE_DIR, Backends, service_env
from benchmarks.pods import Pod

Workload = Literal["io", "db"]
IO_MS = 50
LOCUST_USER = {"io": "IoUser", "db": "DbUser"}
PATHS = {"io": f"/api/io?ms={IO_MS}", "db": "/api/jobs/{job_id}"}


@dataclass(frozen=True)
class WebShape:
    server: Literal["uwsgi", "gunicorn", "granian"]
    worker_class: str
    processes: int
    threads: int
    cpus: float = 1.0

    @property
    def name(self) -> str:
        if self.server == "gunicorn" and self.worker_class == "sync":
            return f"gunicorn sync x{self.processes}"
        return f"{self.server} {self.worker_class} {self.processes}x{self.threads}"

    @property
    def request_slots(self) -> int:
        return self.processes * self.threads


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _unloaded_latency_s(url: str, samples: int) -> float:
    """One request at a time on one keep-alive connection: the fastest is the request without queueing."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    target = f"{parts.path}?{parts.query}" if parts.query else parts.path
    timings = []
    try:
        for _ in range(samples + 1):
            start = time.perf_counter()
            conn.request("GET", target, headers={"Host": "localhost"})
            response = conn.getresponse()
            response.read()
            timings.append(time.perf_counter() - start)
            if response.status != 200:
                raise RuntimeError(f"GET {url} answered {response.status}")
    finally:
        conn.close()
    return min(timings[1:])


def _locust_summary(csv_prefix: Path) -> dict[str, float]:
    with open(f"{csv_prefix}_stats.csv", newline="") as stats:
        rows = {row["Name"]: row for row in csv.DictReader(stats)}
    row = rows["Aggregated"]
    if not int(row["Request Count"]):
        return {"requests": 0, "errors": 0, "rps": 0.0, "p50": 0.0, "p99": 0.0}
    return {
        "requests": int(row["Request Count"]),
        "errors": int(row["Failure Count"]),
        "rps": float(row["Requests/s"]),
        "p50": float(row["50%"]),
        "p99": float(row["99%"]),
    }


class WebPod:
    """A web server pod for one shape; measured under each workload in turn."""

    def __init__(self, shape: WebShape, backends: Backends, cpu_ids: list[int], load_cpu_ids: list[int],
                 workdir: Path) -> None:
        self.shape = shape
        self.backends = backends
        self.load_cpu_ids = load_cpu_ids
        self.workdir = workdir
        self.cpu_wait_ms_per_request: dict[str, float] = {}
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        slug = shape.name.replace(" ", "-")
        self.pod = Pod(slug, [*LAUNCH, "web"], cpu_ids, shape.cpus,
                       service_env(backends, application_name=f"bench-web-{slug}",
                                   WEB_SERVER=shape.server, WEB_PROCESSES=str(shape.processes),
                                   WEB_THREADS=str(shape.threads), WEB_BIND=f"127.0.0.1:{port}",
                                   WEB_WORKER_CLASS="sync" if shape.worker_class == "sync" else "gthread"),
                       SERVICE_DIR,
                       workdir / f"{slug}.log")

    def __enter__(self) -> "WebPod":
        self.pod.start()

        def up() -> bool:
            try:
                return requests.get(f"{self.url}/healthz", timeout=1).status_code == 200
            except requests.RequestException:
                return False

        self.pod.wait_until(up, timeout=60, what="/healthz")
        return self

    def __exit__(self, *exc: object) -> None:
        self.pod.stop()

    def create_job(self) -> str:
        response = requests.post(f"{self.url}/api/jobs", files={"image": ("corpus.jpg", corpus()[0], "image/jpeg")},
                                 timeout=30)
        response.raise_for_status()
        return str(response.json()["id"])

    def measure(self, workload: Workload, *, duration_s: float, concurrency: int, job_id: str) -> dict[str, Any]:
        shape = self.shape
        path = PATHS[workload].format(job_id=job_id)
        unloaded_s = _unloaded_latency_s(f"{self.url}{path}", samples=10 if duration_s < 5 else 30)
        csv_prefix = self.workdir / f"{self.pod.name}-{workload}"
        argv = ["taskset", "--cpu-list", ",".join(map(str, self.load_cpu_ids)),
                str(BIN_DIR / "locust"), "-f", str(Path(__file__).with_name("locustfile.py")), "--headless",
                "--users", str(concurrency), "--spawn-rate", str(concurrency), "--run-time", f"{duration_s:g}s",
                "--host", self.url, "--csv", str(csv_prefix), "--only-summary", "--stop-timeout", "2",
                "--loglevel", "WARNING", LOCUST_USER[workload]]
        env = service_env(self.backends, BENCH_IO_MS=str(IO_MS), BENCH_JOB_ID=job_id)
        cpu_before = self.pod.cpu_seconds()
        wait_before = self.pod.runqueue_wait_seconds()
        result = subprocess.run(argv, cwd=SERVICE_DIR, env=env, capture_output=True, text=True,
                                timeout=duration_s + 60)
        cpu_s = self.pod.cpu_seconds() - cpu_before
        wait_s = self.pod.runqueue_wait_seconds() - wait_before
        self.pod.alive()
        if result.returncode not in (0, 1):  # Locust exits 1 when any request failed: counted below
            raise RuntimeError(f"locust exited {result.returncode}:\n{result.stderr[-3000:]}")
        summary = _locust_summary(csv_prefix)
        if not summary["requests"]:
            raise RuntimeError(f"locust sent no request to {shape.name}:\n{result.stderr[-3000:]}")
        cpu_ms = cpu_s * 1000 / summary["requests"]
        # Not in the results schema: the markdown's account of where the time went.
        self.cpu_wait_ms_per_request[workload] = wait_s * 1000 / summary["requests"]
        service_s = IO_MS / 1000 if workload == "io" else unloaded_s
        limit_threads = shape.request_slots / service_s
        limit_cpu = shape.cpus * 1000 / cpu_ms if cpu_ms > 0 else float("inf")
        limit = min(limit_threads, limit_cpu)
        return {
            "shape": shape.name, "server": shape.server, "worker_class": shape.worker_class,
            "processes": shape.processes, "threads": shape.threads, "cpus": shape.cpus,
            "workload": workload, "concurrency": concurrency, "requests": summary["requests"],
            "rps": round(summary["rps"], 1),
            "latency_ms": {"p50": summary["p50"], "p99": summary["p99"]},
            "errors": summary["errors"],
            "cpu_ms_per_request": round(cpu_ms, 3),
            "limit_rps_threads": round(limit_threads, 1),
            "limit_rps_cpu": round(limit_cpu, 1),
            "ratio": round(summary["rps"] / limit, 3),
            "bound": "threads" if limit_threads <= limit_cpu else "cpu",
        }
