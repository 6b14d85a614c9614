"""What one pod serves at full use, from the measured shape that matches it.

A pod uses at most the CPU it requests at full use (its neighbours are busy too, and the
scheduler shares a contended node by requests), and at most one vCPU per Celery child or
web server process (one Python interpreter each). When no measured shape matches a pod, there
is no figure, only the reason: nothing is extrapolated from another shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import median
from typing import Literal

from stack.config.model import StackConfig
from stack.model.throughput.cpu import CpuBasis
from stack.model.throughput.results import BenchResults, HttpShape

HttpWorkload = Literal["db", "io"]
HEADLINE_HTTP_WORKLOAD: HttpWorkload = "db"
"""The request the plan's headline `req/s` is for: a database read and JSON (CPU-bound)."""


@dataclass(frozen=True)
class WebShape:
    """What a web pod runs, as the benchmark names its shapes."""

    server: str
    worker_class: str
    processes: int
    threads: int

    def describe(self) -> str:
        return f"{self.server} {self.worker_class} {self.processes}x{self.threads}"


WORKER_CLASS: dict[str, str] = {"gunicorn": "gthread", "uwsgi": "http-router", "granian": "blocking-threads"}
"""The benchmark's name for how each `web.server` runs threads: gunicorn's gthread workers,
uWSGI's processes and threads behind its HTTP router, granian's blocking threads behind its
Rust runtime (runtime/django_eks_runtime/launch.py)."""


def web_shape(config: StackConfig) -> WebShape:
    """The web server shape of a stack's config, as the benchmark names it."""
    server = config.web.server
    return WebShape(server, WORKER_CLASS[server], config.web.gunicorn_workers, config.web.threads)


def configurable_web_shapes(results: BenchResults) -> list[WebShape]:
    """Measured web shapes a stack's config can run: either server, 2+ threads per process."""
    shapes = {
        WebShape(h.server, h.worker_class, h.processes, h.threads)
        for h in results.http
        if WORKER_CLASS.get(h.server) == h.worker_class and 2 <= h.threads <= 64 and h.processes <= 16
    }
    return sorted(shapes, key=lambda s: (s.server, s.processes, s.threads))


@dataclass(frozen=True)
class PerPod:
    """What one pod of a workload serves at full use on its pool's instance type."""

    per_second: float
    pod_bound: str
    shape: str
    basis: CpuBasis
    results: str


def task_cpu_seconds(results: BenchResults, concurrency: int) -> float | None:
    """CPU seconds per job of the shapes measured at `concurrency` (their median), None if none."""
    shapes = [j.cpu_s_per_job for j in results.jobs if j.concurrency == concurrency]
    return median(shapes) if shapes else None


def _http_shapes(results: BenchResults, shape: WebShape, workload: HttpWorkload) -> list[HttpShape]:
    return [
        h
        for h in results.http
        if h.workload == workload
        and (h.server, h.worker_class, h.processes, h.threads)
        == (shape.server, shape.worker_class, shape.processes, shape.threads)
    ]


def request_cpu_ms(results: BenchResults, shape: WebShape, workload: HttpWorkload) -> float | None:
    """CPU milliseconds per request of `shape` for `workload` (the median), None if not measured."""
    shapes = _http_shapes(results, shape, workload)
    return median(h.cpu_ms_per_request for h in shapes) if shapes else None


def with_task_cpu(results: BenchResults, cpu_s_per_job: float) -> BenchResults:
    """`results` with every job shape's CPU per job replaced (a measured figure), the rest kept."""
    jobs = [j.model_copy(update={"cpu_s_per_job": cpu_s_per_job}) for j in results.jobs]
    return results.model_copy(update={"jobs": jobs})


def with_request_cpu(results: BenchResults, shape: WebShape, cpu_ms_per_request: float) -> BenchResults:
    """`results` with `shape`'s CPU per request replaced for every request kind (a measured figure)."""
    key = (shape.server, shape.worker_class, shape.processes, shape.threads)
    http = [
        h.model_copy(update={"cpu_ms_per_request": cpu_ms_per_request})
        if (h.server, h.worker_class, h.processes, h.threads) == key
        else h
        for h in results.http
    ]
    return results.model_copy(update={"http": http})


def worker_rate(
    results: BenchResults, *, concurrency: int, cpu_millicores: int, basis: CpuBasis, label: str
) -> PerPod | str:
    """Jobs per second of one worker pod of `concurrency` children, or why no measured shape applies."""
    shapes = [j for j in results.jobs if j.concurrency == concurrency]
    if not shapes:
        measured = sorted({j.concurrency for j in results.jobs})
        return (
            f"worker.concurrency {concurrency}: no job shape with that concurrency in {label} "
            f"(measured: {', '.join(f'-c {c}' for c in measured) or 'no job shapes'}); "
            "jobs per hour not estimated"
        )
    cpu_s_per_job = median(j.cpu_s_per_job for j in shapes)  # task_cpu_seconds' figure
    ratio = median(j.ratio for j in shapes)
    request = cpu_millicores / 1000
    usable = min(concurrency, request)
    per_second = usable * basis.per_vcpu / cpu_s_per_job * ratio
    bound = "cpu request" if request < concurrency else "concurrency"
    shape = (
        f"-c {concurrency}: {cpu_s_per_job:g} CPU s/job, ratio {ratio:.2f} "
        f"({', '.join(j.shape for j in shapes)})"
    )
    return PerPod(per_second, bound, shape, basis, label)


def web_rate(
    results: BenchResults,
    *,
    shape: WebShape,
    cpu_millicores: int,
    basis: CpuBasis,
    label: str,
    workload: HttpWorkload,
) -> PerPod | str:
    """Requests per second of one web pod of `shape`, or why no measured shape applies."""
    shapes = _http_shapes(results, shape, workload)
    if not shapes:
        measured = sorted(
            {f"{h.server} {h.worker_class} {h.processes}x{h.threads}" for h in results.http if h.workload == workload}
        )
        return (
            f"web shape {shape.describe()} ({workload} requests) was not measured in {label} "
            f"(measured: {', '.join(measured) or 'none'}); requests per second not estimated. "
            "Add the shape to the benchmark or configure a measured one"
        )
    threads_limit = median(h.limit_rps_threads for h in shapes)
    cpu_ms = median(h.cpu_ms_per_request for h in shapes)
    ratio = median(h.ratio for h in shapes)
    usable = min(shape.processes, cpu_millicores / 1000)
    cpu_limit = usable * basis.per_vcpu * 1000 / cpu_ms
    bound = "threads" if threads_limit <= cpu_limit else "cpu request"
    per_second = min(threads_limit, cpu_limit) * ratio
    text = (
        f"{shape.describe()} {workload}: threads limit {threads_limit:g} req/s, "
        f"{cpu_ms:g} CPU ms/req, ratio {ratio:.2f}"
    )
    return PerPod(per_second, bound, text, basis, label)


def web_per_pod(
    config: StackConfig, results: BenchResults, basis: CpuBasis, label: str, workload: HttpWorkload
) -> PerPod | str:
    """Requests per second of one of the stack's web pods for `workload`."""
    return web_rate(
        results,
        shape=web_shape(config),
        cpu_millicores=config.web.cpu_millicores,
        basis=basis,
        label=label,
        workload=workload,
    )


