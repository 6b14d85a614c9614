"""The plan as text: resources, capacity, cost, problems, and stacks side by side."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from itertools import groupby
from typing import Any

from stack.tools.plan.report import StackPlan
from stack.tools.plan.throughput import render_measured, render_throughput
from stack.tools.text import table, unit_usd, usd


def _settings(settings: dict[str, Any]) -> str:
    def fmt(v: Any) -> str:
        if isinstance(v, list):
            return ",".join(str(x) for x in v)
        return str(v)

    return " ".join(f"{k}={fmt(v)}" for k, v in settings.items())


def render_resources(plan: StackPlan) -> str:
    if not plan.offline_run:
        return "Resources: not listed (the program did not run offline; see errors)"
    out = [f"Resources ({len(plan.resources)}; values only the cloud knows are placeholders)"]
    for component, lines in groupby(plan.resources, key=lambda r: r.component):
        out.append(f"  {component}")
        group = list(lines)
        rows = [(f"    {r.type}", r.name, _settings(r.settings)) for r in group]
        width_type = max(len(r[0]) for r in rows)
        width_name = max(len(r[1]) for r in rows)
        out += [f"{t.ljust(width_type)}  {n.ljust(width_name)}  {s}".rstrip() for t, n, s in rows]
    return "\n".join(out)


def _counted(names: Iterable[str]) -> str:
    """`coredns-1, coredns-2, metrics-server` -> `coredns x2, metrics-server`."""
    counts = Counter(re.sub(r"-\d+$", "", name) for name in names)
    return ", ".join(name if n == 1 else f"{name} x{n}" for name, n in counts.items())


def render_capacity(plan: StackPlan) -> str:
    if plan.capacity is None:
        return "Capacity: n/a"
    rows = []
    for p in plan.capacity.pools:
        per_node = ", ".join(f"{w} {n}" for w, n in p.pods_per_node.items()) or "-"
        rows.append(
            (
                p.pool + (" *" if p.runs_system_pods else ""),
                p.instance_type + (" (spot)" if p.capacity_type == "SPOT" else ""),
                f"{p.allocatable.cpu_millicores}m/{p.allocatable.memory_mib}Mi/{p.allocatable.max_pods}",
                f"{p.room.cpu_millicores}m/{p.room.memory_mib}Mi/{p.room.pods}",
                per_node,
                ", ".join(f"{w} {n}" for w, n in p.replicas.items()) or "-",
                p.nodes_needed,
                ", ".join(f"{w} {n}" for w, n in p.max_replicas.items()) or "-",
                p.nodes_needed_at_max,
                ", ".join(f"{w} {n}" for w, n in p.min_replicas.items()) or "-",
                f"{p.nodes_at_min}/{p.nodes_at_max}",
                f"{p.min_size}/{p.desired_size}/{p.max_size}",
            )
        )
    headers = (
        "pool",
        "type",
        "allocatable cpu/mem/pods",
        "after DaemonSets",
        "pods per node",
        "replicas",
        "nodes",
        "max replicas",
        "nodes at max",
        "min replicas",
        "autoscaled nodes min/max",
        "min/desired/max",
    )
    cluster = plan.capacity.cluster
    ds = ", ".join(f"{p.name} {p.cpu_millicores}m/{p.memory_mib}Mi" for p in cluster.daemonsets)
    system = sum(p.cpu_millicores for p in cluster.system), sum(p.memory_mib for p in cluster.system)
    return "\n".join(
        [
            "Capacity (per node: kubelet reserve, 7.5% OS memory, 100Mi eviction; nodes = pods packed first-fit)",
            table(headers, rows, right=(6, 8, 10)),
            f"  DaemonSets on every node: {ds}",
            f"  * system pods counted on pool {plan.capacity.system_pool!r}: {len(cluster.system)} pods, "
            f"{system[0]}m/{system[1]}Mi ({_counted(p.name for p in cluster.system)})",
            "  autoscaled nodes: what the Cluster Autoscaler keeps with every workload at its minimum / "
            "maximum replicas, within minSize..maxSize",
        ]
    )


def render_cost(plan: StackPlan) -> str:
    if plan.cost is None:
        return "Cost: n/a (see errors)"
    cost = plan.cost
    rows = [
        (
            i.item,
            f"{i.quantity:g}",
            i.unit,
            f"{i.unit_usd:g}",
            usd(i.scaled_in_usd),
            usd(i.monthly_usd),
            usd(i.monthly_usd_at_max),
            i.note,
        )
        for i in cost.items
    ]
    rows.append(
        ("total", "", "", "", usd(cost.monthly_usd_at_min), usd(cost.monthly_usd), usd(cost.monthly_usd_at_max), "")
    )
    return "\n".join(
        [
            f"Monthly cost (USD, {cost.price_source}; priced as of {cost.as_of.isoformat()})",
            table(
                ("item", "qty", "unit", "unit $", "scaled in", "monthly", "scaled out", "note"),
                rows,
                right=(1, 3, 4, 5, 6),
            ),
            *(f"  - {n}" for n in cost.notes),
        ]
    )


def render_problems(plan: StackPlan) -> str:
    lines = [f"ERROR   {e}" for e in plan.errors] + [f"warning {w}" for w in plan.warnings]
    return "Problems\n" + ("\n".join(f"  {line}" for line in lines) if lines else "  none")


def render_outputs(plan: StackPlan) -> str:
    if not plan.outputs:
        return ""
    width = max(len(k) for k in plan.outputs)
    lines = []
    for key, value in plan.outputs.items():
        text = str(value)
        if len(text) > 100:
            text = text[:97] + "..."
        lines.append(f"  {key.ljust(width)}  {text}")
    return "Stack outputs\n" + "\n".join(lines)


def render_stack(plan: StackPlan) -> str:
    title = f"Stack {plan.stack} (Pulumi.{plan.stack}.yaml)"
    parts = [
        f"{title}\n{'=' * len(title)}",
        render_resources(plan),
        render_outputs(plan),
        render_capacity(plan),
        render_cost(plan),
        render_throughput(plan.throughput, plan.throughput_note),
        render_measured(plan.measured) if plan.measured else "",
        render_problems(plan),
    ]
    return "\n\n".join(p for p in parts if p) + "\n"


def _count(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def render_side_by_side(plans: Sequence[StackPlan]) -> str:
    rows = []
    for plan in plans:
        s = plan.summary()
        rows.append(
            (
                plan.stack,
                usd(s.get("monthly_cost_at_min_usd")),
                usd(s.get("monthly_cost_usd")),
                usd(s.get("monthly_cost_at_max_usd")),
                f"{s.get('nodes_desired', '-')}/{s.get('nodes_max', '-')}",
                s.get("nodes_needed", "-"),
                f"{s.get('web_vcpu', 0):g}" if "web_vcpu" in s else "-",
                f"{s.get('worker_vcpu', 0):g}" if "worker_vcpu" in s else "-",
                usd(s.get("usd_per_worker_vcpu")),
                _count(s.get("jobs_per_hour")),
                unit_usd(s.get("usd_per_1000_jobs")),
                _count(s.get("requests_per_second")),
                unit_usd(s.get("usd_per_million_requests")),
                len(plan.errors),
                len(plan.warnings),
            )
        )
    headers = (
        "stack",
        "$/month at min",
        "$/month",
        "$/month at max",
        "nodes desired/max",
        "nodes needed",
        "web vCPU",
        "worker vCPU",
        "$/worker vCPU",
        "jobs/h",
        "$/1000 jobs",
        "req/s",
        "$/M req",
        "errors",
        "warnings",
    )
    return "\n".join(
        [
            "Stacks side by side",
            table(headers, rows, right=(1, 2, 3, *range(5, 15))),
            "  vCPU: requested by the pods at the configured replicas. $/worker vCPU: monthly cost of the",
            "  workers' node pool at desired size per vCPU requested on it (idle and shared capacity count).",
            "  jobs/h, req/s: served at full use at the configured replicas, from benchmark results;",
            "  $/1000 jobs, $/M req: node cost charged to the workload per unit served (see Throughput).",
        ]
    )
