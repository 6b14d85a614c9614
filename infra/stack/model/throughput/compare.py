"""A stack's measured figures (`make measure`) beside the plan's estimates, and in their place.

The plan's estimates rest on the benchmark's CPU per job and per request (`pods`). A measured
results file says what the deployed stack's own tasks and requests cost. Two uses:

* `compare`: per worker Deployment and queue, and for the web pods, the estimate and the
  measured figure with their ratio (measured / estimated): CPU seconds per task and the jobs per
  hour one pod serves at full use; CPU per request and the requests per second one web pod
  serves. The per-pod rates "from the measured CPU" are the plan's own formula (`pods`) with the
  measured CPU in place of the benchmark's: the same CPU request, concurrency or threads limit,
  and the benchmark's ratio to the CPU limit.
* `with_measured_task_cpu`: the results with the measured CPU per task of the jobs queue in place
  of every file's figure, which the recommender searches with.

A CPU time measured on one instance type is turned into the benchmark's unit by the CPU basis
(`cpu.running_speed`), and the basis of each other type turns it into that type's throughput,
as it does the benchmark's own figure. Under the basis assumed today a vCPU of every catalogued
type runs as fast as a benchmark CPU (a burstable type counts only its baseline share at full use),
so the measured seconds apply unchanged to every type.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from stack.config.model import StackConfig
from stack.config.names import DEFAULT_QUEUE
from stack.config.workers import worker_deployments
from stack.model.throughput.cpu import running_speed
from stack.model.throughput.estimate import ResultsSet
from stack.model.throughput.measured import MeasuredError, MeasuredResults, QueueFigures
from stack.model.throughput.pods import (
    HEADLINE_HTTP_WORKLOAD,
    PerPod,
    request_cpu_ms,
    task_cpu_seconds,
    web_rate,
    web_shape,
    with_request_cpu,
    with_task_cpu,
    worker_rate,
)
from stack.model.throughput.results import LoadedResults


@dataclass(frozen=True)
class Figure:
    """One figure of a workload: the plan's estimate and the stack's measured value."""

    workload: str
    name: str
    estimated: float | None
    measured: float | None

    @property
    def ratio(self) -> float | None:
        if self.estimated is None or self.measured is None or self.estimated == 0:
            return None
        return self.measured / self.estimated

    def as_json(self) -> dict[str, Any]:
        ratio = self.ratio
        return {
            "workload": self.workload,
            "figure": self.name,
            "estimated": None if self.estimated is None else round(self.estimated, 4),
            "measured": None if self.measured is None else round(self.measured, 4),
            "ratio": None if ratio is None else round(ratio, 3),
        }


@dataclass
class Comparison:
    """The measured file's figures beside one stack's estimates."""

    label: str
    measured: MeasuredResults
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        m = self.measured
        return {
            "file": self.label,
            "stack": m.stack,
            "window": m.window.model_dump(),
            "queryUrl": m.query_url,
            "instanceTypes": dict(m.instance_types),
            "figures": [f.as_json() for f in self.figures],
            "notes": list(self.notes),
        }


def _work_seconds(results: ResultsSet, seconds: float, measured_on: str) -> float:
    """CPU seconds measured on `measured_on` in the benchmark's unit (benchmark CPU seconds)."""
    _, basis = results.for_instance_type(measured_on)
    return seconds * running_speed(basis)


def _rate(per: PerPod | str, scale: float) -> float | None:
    return per.per_second * scale if isinstance(per, PerPod) else None


def _queue_line(q: QueueFigures) -> str:
    def s(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.3g} s"

    outcomes = ", ".join(f"{o} {n}" for o, n in q.tasks_by_outcome.items()) or "none"
    return (
        f"queue {q.queue}: {q.tasks} tasks in the window ({q.tasks_per_hour:,.1f}/h; {outcomes}), "
        f"run time {s(q.runtime_seconds_per_task)} mean, p95 {s(q.runtime_p95_seconds)}, "
        f"queue wait p95 {s(q.queue_wait_p95_seconds)}"
    )


def compare(config: StackConfig, results: ResultsSet, measured: MeasuredResults, label: str, stack: str) -> Comparison:
    """The measured figures beside `stack`'s estimates from `results`."""
    out = Comparison(label, measured)
    if measured.stack != stack:
        out.notes.append(f"measured on stack {measured.stack}, compared with the estimates of {stack}")
    for deployment in worker_deployments(config):
        instance = config.node_pools[deployment.spec.node_pool].instance_type
        loaded, basis = results.for_instance_type(instance)
        w = deployment.spec
        for queue in deployment.queues:
            q = measured.queue(queue)
            if q is None:
                out.notes.append(f"{deployment.name} [{queue}]: no tasks of queue {queue} in the measured window")
                continue
            out.notes.append(_queue_line(q))
            name = f"{deployment.name} [{queue}]"
            if q.cpu_seconds_per_task is None:
                continue
            on = q.instance_type or instance
            work = _work_seconds(results, q.cpu_seconds_per_task, on)
            if on != instance:
                out.notes.append(f"{name}: CPU per task measured on {on}, this stack's pool runs {instance}")
            benchmarked = queue == DEFAULT_QUEUE
            estimated_cpu = task_cpu_seconds(loaded.results, w.concurrency) if benchmarked else None
            out.figures.append(Figure(name, "CPU s per task", estimated_cpu, work))
            if not benchmarked:
                out.notes.append(f"{name}: the benchmark measures the {DEFAULT_QUEUE!r} queue's task only: no estimate")
                continue
            estimated, from_measured = (
                _rate(
                    worker_rate(r, concurrency=w.concurrency, cpu_millicores=w.cpu_millicores, basis=basis, label=loaded.label),
                    3600,
                )
                for r in (loaded.results, with_task_cpu(loaded.results, work))
            )
            out.figures.append(Figure(name, "jobs/h per pod", estimated, from_measured))
    web = measured.web
    if web is None:
        out.notes.append("web: no requests in the measured window")
        return out
    shape = web_shape(config)
    instance = config.node_pools[config.web.node_pool].instance_type
    out.notes.append(
        f"web: {web.requests} requests in the window ({web.requests_per_second:,.2f}/s), CPU per request over "
        f"every route ({', '.join(web.requests_by_route) or 'none'}); the estimate is for "
        f"{HEADLINE_HTTP_WORKLOAD} requests"
    )
    if web.thread_cpu_seconds_per_request_by_route:
        out.notes.append(
            "web: each route's own thread CPU per request: "
            + ", ".join(f"{r} {v * 1000:.3g} ms" for r, v in web.thread_cpu_seconds_per_request_by_route.items())
        )
    if web.shape != shape.describe():
        out.notes.append(f"web: measured as {web.shape}, this stack runs {shape.describe()}: not compared")
        return out
    if web.cpu_seconds_per_request is None:
        return out
    loaded, basis = results.for_instance_type(instance)
    measured_ms = _work_seconds(results, web.cpu_seconds_per_request, web.instance_type) * 1000
    out.figures.append(
        Figure("web", "CPU ms per request", request_cpu_ms(loaded.results, shape, HEADLINE_HTTP_WORKLOAD), measured_ms)
    )

    def rate(r: Any) -> float | None:
        return _rate(
            web_rate(
                r, shape=shape, cpu_millicores=config.web.cpu_millicores, basis=basis, label=loaded.label,
                workload=HEADLINE_HTTP_WORKLOAD,
            ),
            1,
        )

    out.figures.append(
        Figure("web", "req/s per pod", rate(loaded.results), rate(with_request_cpu(loaded.results, shape, measured_ms)))
    )
    return out


def with_measured_task_cpu(results: ResultsSet, measured: MeasuredResults, label: str) -> ResultsSet:
    """`results` with the measured CPU per task of the jobs queue in place of each file's figure.

    MeasuredError when the file has no CPU per task of that queue.
    """
    q = measured.queue(DEFAULT_QUEUE)
    if q is None or q.cpu_seconds_per_task is None:
        raise MeasuredError(
            f"measured results {label}: no CPU per task of the {DEFAULT_QUEUE!r} queue (no such tasks in "
            f"{measured.window.start} .. {measured.window.end}), which the recommender needs"
        )
    on = q.instance_type or measured.instance_types.get("worker") or ""
    if not on:
        raise MeasuredError(f"measured results {label}: the {DEFAULT_QUEUE!r} queue has no instance type")
    work = _work_seconds(results, q.cpu_seconds_per_task, on)
    note = f"CPU per task {work:.4g} s measured on {on} ({label})"
    return ResultsSet(tuple(LoadedResults(f.path, with_task_cpu(f.results, work), note) for f in results.files))
