"""A stack's own figures over a window, from its metrics: the measured results document.

The metric names are the platform's contract with the app (`stack.model.app_metrics`), which
the runtime package implements.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from stack.config.model import StackConfig
from stack.config.workers import worker_deployments
from stack.model.app_metrics import (
    HTTP_REQUEST_CPU,
    HTTP_REQUESTS,
    POD_INFO,
    PROCESS_CPU,
    TASK_CPU,
    TASK_QUEUE_WAIT,
    TASK_RUNTIME,
    TASKS_TOTAL,
)
from stack.model.throughput.measured import SCHEMA
from stack.model.throughput.pods import web_shape
from stack.tools.measure.prometheus import (
    PrometheusApi,
    Series,
    has_samples_after,
    increases_by,
    quantiles_by,
)

WEB_COMPONENT = "web"
QUANTILE = 0.95


class MeasureError(RuntimeError):
    """The window holds no figures to measure."""


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def _ratio(numerator: float, denominator: float) -> float | None:
    return None if denominator <= 0 else round(numerator / denominator, 6)


def instance_types(config: StackConfig) -> dict[str, str]:
    """Each component's node pool's instance type: `web` and every worker Deployment's name."""
    out = {WEB_COMPONENT: config.node_pools[config.web.node_pool].instance_type}
    for d in worker_deployments(config):
        out[d.name] = config.node_pools[d.spec.node_pool].instance_type
    return out


def queue_components(config: StackConfig) -> dict[str, str]:
    """Celery queue -> the worker Deployment that consumes it."""
    return {queue: d.name for d in worker_deployments(config) for queue in d.queues}


def _pods_per_node(series: list[Series], start: float) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for s in series:
        if any(t > start for t, _ in s.samples):
            labels = s.labels
            pod = labels.get("pod") or labels.get("instance", "")
            seen[labels.get("node", "")][labels.get("component", "")].add(pod)
    return [
        {"node": node, "pods": {component: len(pods) for component, pods in sorted(components.items())}}
        for node, components in sorted(seen.items())
    ]


def measure(
    api: PrometheusApi, *, stack: str, config: StackConfig, start: datetime, end: datetime, measured_at: datetime
) -> dict[str, Any]:
    """The measured results document of `stack` between `start` and `end` (not yet validated)."""
    t0, t1 = start.timestamp(), end.timestamp()
    seconds = t1 - t0

    def samples(selector: str) -> list[Series]:
        return api.range_samples(selector, t0, t1)

    task_count = samples(f"{TASK_CPU}_count")
    requests = samples(HTTP_REQUESTS)
    if not has_samples_after(task_count, t0) and not has_samples_after(requests, t0):
        raise MeasureError(
            f"no samples of {TASK_CPU}_count nor of {HTTP_REQUESTS} between {_iso(start)} and {_iso(end)} "
            f"at {api.url}: nothing was scraped from the stack's pods in that window (is the collector "
            "running, and did the window see any work? try a longer SINCE)"
        )
    types = instance_types(config)
    consumers = queue_components(config)

    queues: list[dict[str, Any]] = []
    if has_samples_after(task_count, t0):
        by = ("queue",)
        counts = increases_by(task_count, t0, by)
        cpu = increases_by(samples(f"{TASK_CPU}_sum"), t0, by)
        runtime = increases_by(samples(f"{TASK_RUNTIME}_sum"), t0, by)
        runtime_count = increases_by(samples(f"{TASK_RUNTIME}_count"), t0, by)
        runtime_p95 = quantiles_by(QUANTILE, samples(f"{TASK_RUNTIME}_bucket"), t0, "queue")
        wait_p95 = quantiles_by(QUANTILE, samples(f"{TASK_QUEUE_WAIT}_bucket"), t0, "queue")
        outcomes = increases_by(samples(TASKS_TOTAL), t0, ("queue", "outcome"))
        for (queue,) in sorted(counts):
            by_outcome = {o: round(n) for (q, o), n in sorted(outcomes.items()) if q == queue and round(n)}
            tasks = sum(by_outcome.values())
            component = consumers.get(queue)
            queues.append(
                {
                    "queue": queue,
                    "component": component,
                    "instance_type": types.get(component) if component else None,
                    "tasks": tasks,
                    "tasks_by_outcome": by_outcome,
                    "cpu_seconds": round(cpu.get((queue,), 0.0), 6),
                    "cpu_seconds_per_task": _ratio(cpu.get((queue,), 0.0), counts[(queue,)]),
                    "runtime_seconds_per_task": _ratio(runtime.get((queue,), 0.0), runtime_count.get((queue,), 0.0)),
                    "runtime_p95_seconds": _round(runtime_p95.get(queue)),
                    "queue_wait_p95_seconds": _round(wait_p95.get(queue)),
                    "tasks_per_hour": round(tasks / seconds * 3600, 3),
                }
            )

    web: dict[str, Any] | None = None
    if has_samples_after(requests, t0):
        by_route = increases_by(requests, t0, ("route",))
        web_cpu = increases_by(samples(f'{PROCESS_CPU}{{component="{WEB_COMPONENT}"}}'), t0, ())
        served = {route: round(n) for (route,), n in sorted(by_route.items()) if round(n)}
        thread_cpu = increases_by(samples(f"{HTTP_REQUEST_CPU}_sum"), t0, ("route",))
        thread_count = increases_by(samples(f"{HTTP_REQUEST_CPU}_count"), t0, ("route",))
        per_route = {
            route: round(thread_cpu.get((route,), 0.0) / n, 6) for (route,), n in sorted(thread_count.items()) if n > 0
        }
        total = sum(served.values())
        cpu_seconds = web_cpu.get((), 0.0)
        web = {
            "component": WEB_COMPONENT,
            "instance_type": types[WEB_COMPONENT],
            "shape": web_shape(config).describe(),
            "requests": total,
            "requests_by_route": served,
            "cpu_seconds": round(cpu_seconds, 6),
            "cpu_seconds_per_request": _ratio(cpu_seconds, total),
            "thread_cpu_seconds_per_request_by_route": per_route,
            "requests_per_second": round(total / seconds, 4),
        }

    return {
        "schema": SCHEMA,
        "stack": stack,
        "measured_at": _iso(measured_at),
        "window": {"start": _iso(start), "end": _iso(end), "seconds": round(seconds, 3)},
        "query_url": api.url,
        "instance_types": types,
        "web": web,
        "queues": queues,
        "pods_per_node": _pods_per_node(samples(POD_INFO), t0),
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)
