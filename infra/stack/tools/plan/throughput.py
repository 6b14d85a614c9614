"""The plan's throughput section, as text."""

from __future__ import annotations

from stack.model.throughput.compare import Comparison, Figure
from stack.model.throughput.estimate import StackThroughput, WorkloadThroughput
from stack.model.throughput.pods import HEADLINE_HTTP_WORKLOAD
from stack.tools.text import table, unit_usd


def _rate(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit == "jobs":
        return f"{value * 3600:,.0f} jobs/h"
    return f"{value:,.1f} req/s"


def _row(w: WorkloadThroughput) -> tuple[str, ...]:
    amount = 1000 if w.unit == "jobs" else 1_000_000
    per = "$/1000 jobs" if w.unit == "jobs" else "$/M requests"
    pod = w.per_pod
    # A Deployment of `workers` shows the queues it consumes.
    name = f"{w.workload} [{', '.join(w.queues)}]" if w.workload.startswith("worker-") else w.workload
    return (
        name,
        f"{w.pool} ({w.instance_type})",
        "-" if pod is None else _rate(pod.per_second, w.unit),
        f"{w.min_replicas} / {w.replicas} / {w.max_replicas}",
        " / ".join(_rate(r, w.unit) for r in (w.per_second_at_min, w.per_second, w.per_second_at_max)),
        " / ".join(
            unit_usd(w.usd_per(amount, at_min=lo, at_max=hi)) for lo, hi in ((True, False), (False, False), (False, True))
        )
        + f" {per}",
        "-" if pod is None else pod.pod_bound,
        w.node_bound,
    )


def render_throughput(throughput: StackThroughput | None, note: str = "") -> str:
    if throughput is None:
        return f"Throughput: {note or 'n/a'}"
    headers = (
        "workload",
        "pool (type)",
        "per pod",
        "replicas min / set / max",
        "at min / at replicas / at max",
        "node cost per unit, at min / at replicas / at max",
        "pod bound by",
        "node packing bound by",
    )
    rows = [*(_row(w) for w in throughput.workers), _row(throughput.web)]
    lines = [
        "Throughput at full use (from benchmark results; an estimate until measured on the stack itself)",
        table(headers, rows),
    ]
    shapes = {w.workload: w.per_pod for w in (*throughput.workers, throughput.web) if w.per_pod}
    for workload, pod in shapes.items():
        lines.append(f"  {workload} shape: {pod.shape}")
    bases = {pod.basis.describe() for pod in shapes.values()}
    for basis in sorted(bases):
        lines.append(f"  CPU basis: {basis}")
    if throughput.web.by_http_workload:
        lines.append(
            "  web req/s by request kind at replicas: "
            + ", ".join(f"{k} {v:,.1f}" for k, v in sorted(throughput.web.by_http_workload.items()))
            + f" (headline: {HEADLINE_HTTP_WORKLOAD}, GET /api/jobs/<id>)"
        )
    lines += [
        "  at min: every workload at autoscaling.minReplicas (workers at 0 serve nothing: n/a cost per unit)",
        "  node cost per unit: the pool's node-hours (desired size; at min and at max the nodes the Cluster",
        "  Autoscaler keeps for the pods, within minSize..maxSize) shared among its pods",
        "  by CPU requested, over what the workload serves at full use; fixed costs (control plane, NAT,",
        "  ALB, Redis, RDS) excluded",
    ]
    for problem in throughput.problems:
        lines.append(f"  ! {problem}")
    return "\n".join(lines)


def _figure(value: float | None, name: str) -> str:
    if value is None:
        return "n/a"
    if name.startswith("CPU s"):
        return f"{value:.4g} s"
    if name.startswith("CPU ms"):
        return f"{value:.4g} ms"
    return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


def _figure_row(f: Figure) -> tuple[str, ...]:
    ratio = f.ratio
    return (f.workload, f.name, _figure(f.estimated, f.name), _figure(f.measured, f.name), "n/a" if ratio is None else f"{ratio:.2f}")


def render_measured(comparison: Comparison) -> str:
    """The stack's measured figures (make measure) beside the plan's estimates."""
    m = comparison.measured
    lines = [
        f"Measured vs estimated (from {comparison.label}: stack {m.stack}, {m.window.start} .. {m.window.end}, "
        f"{m.query_url})",
        table(("workload", "figure", "estimated", "measured", "measured/estimated"), [_figure_row(f) for f in comparison.figures], right=(2, 3, 4)),
        "  per pod from the measured CPU: the estimate's formula (CPU request, concurrency or threads, the",
        "  benchmark's ratio to the CPU limit) with the measured CPU per task or request in place of the benchmark's",
    ]
    lines += [f"  {note}" for note in comparison.notes]
    return "\n".join(lines)
