"""The metrics test app (tests/runtime/metrics_app/) run as the platform runs an app: each process
through ``python -m django_eks_runtime <process>`` in the app's directory, against a Redis of its
own; and what its ``/metrics`` endpoints and its JSON log lines say, parsed."""

import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import requests
from prometheus_client.parser import text_string_to_metric_families

SERVICE_TESTS = Path(__file__).resolve().parents[1] / "service"
if str(SERVICE_TESTS) not in sys.path:
    sys.path.insert(0, str(SERVICE_TESTS))

from service_processes import Proc, Processes, free_port, wait_for  # noqa: E402
from throwaway_servers import ThrowawayRedis  # noqa: E402

APP_DIR = Path(__file__).resolve().parent / "metrics_app"
if str(APP_DIR) not in sys.path:
    sys.path.insert(0, str(APP_DIR))  # the test measures the app's own CPU work (metricsite.work)

RUN = [sys.executable, "-m", "django_eks_runtime"]
APP_ENV = {
    "DJANGO_SETTINGS_MODULE": "metricsite.settings",
    "APP_WSGI": "metricsite.wsgi:application",
    "APP_CELERY": "metricsite.celery:app",
    "DJANGO_LOG_LEVEL": "INFO",
    "PYTHONUNBUFFERED": "1",
    "PROMETHEUS_MULTIPROC_DIR": "",
}


class Site(Processes):
    def run(self, name: str, process: str, *extra: str, env: dict[str, str] | None = None) -> Proc:
        # stdout alone in the log: the JSON lines the cluster's log collection reads.
        return self.start(name, [*RUN, process, *extra], env=env, cwd=APP_DIR, stderr_apart=True)

    def serve(self, server: str, *, env: dict[str, str] | None = None) -> tuple[Proc, str, str]:
        """A web process on a free port, its probe server on another: (process, app URL, probes URL)."""
        port, probe_port = free_port(), free_port()
        settings = {"WEB_SERVER": server, "WEB_BIND": f"127.0.0.1:{port}", "WEB_THREADS": "4",
                    "PROBE_BIND": f"127.0.0.1:{probe_port}", **(env or {})}
        proc = self.run(f"web-{server}", "web", env=settings)
        url, probes = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{probe_port}"
        self.wait_http(proc, f"{probes}/healthz", timeout=60)
        return proc, url, probes

    def worker(self, queues: str, *, env: dict[str, str] | None = None) -> Proc:  # type: ignore[override]
        self.node = f"metrics-{free_port()}@tests"
        proc = self.run("worker", "worker", "--hostname", self.node,
                        env={"WORKER_QUEUES": queues, "CELERY_HEARTBEAT_FILE": str(self.tmp_path / "heartbeat"),
                             **(env or {})})
        wait_for(lambda: self._alive(proc) and "ready." in proc.log(), timeout=60, what="worker ready")
        return proc

    def beat(self, *, env: dict[str, str] | None = None) -> Proc:
        proc = self.run("beat", "beat", env={"BEAT_SCHEDULE_FILE": str(self.tmp_path / "schedule"), **(env or {})})
        wait_for(lambda: self._alive(proc) and "Sending due task tick" in proc.log(), timeout=60,
                 what="beat sending")
        return proc


def site(redis: ThrowawayRedis, tmp_path: Path) -> Site:
    return Site(tmp_path, {**APP_ENV, "REDIS_URL": redis.url(0)})


@dataclass(frozen=True)
class Scrape:
    """One /metrics answer: each sample's value by its name and labels."""

    samples: dict[tuple[str, frozenset[tuple[str, str]]], float]

    def value(self, name: str, **labels: str) -> float:
        return self.samples.get((name, frozenset(labels.items())), 0.0)

    def series(self, name: str) -> dict[frozenset[tuple[str, str]], float]:
        return {labels: value for (sample, labels), value in self.samples.items() if sample == name}

    def total(self, name: str, **labels: str) -> float:
        """The sum over every series of `name` whose labels include `labels`."""
        wanted = set(labels.items())
        return sum(value for labels_, value in self.series(name).items() if wanted <= labels_)

    def bucket(self, name: str, le: float, **labels: str) -> float:
        return self.value(f"{name}_bucket", **labels, le=str(le))


def scrape(url: str) -> Scrape:
    response = requests.get(url, timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return Scrape(samples)


def json_lines(log: str, *, every: bool = False) -> Iterator[dict[str, object]]:
    """Each line the app's logging wrote (a JSON object), parsed: a line that starts as one and
    does not parse fails the test, and with `every` any other line too (the web servers' own
    start-up and access lines are not JSON; Celery's are, with its banner left out)."""
    for line in log.splitlines():
        if line.startswith("{") or (every and line.strip()):
            yield json.loads(line)


def port_closed(port: int) -> bool:
    try:
        requests.get(f"http://127.0.0.1:{port}/metrics", timeout=2)
    except requests.ConnectionError:
        return True
    return False


def cpu_of(work, *args: object) -> float:
    """Thread CPU seconds of `work` here, the least of three runs (the baseline of a CPU bound)."""
    best = float("inf")
    for _ in range(3):
        started = time.thread_time()
        work(*args)
        best = min(best, time.thread_time() - started)
    return best
