"""One stack's plan: resources, capacity, cost and problems, as plain data."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stack.model.capacity import CapacityReport, capacity_report
from stack.model.pod_requests import workload_vcpus
from stack.config.loader import config_from_stack_file, stack_names
from stack.config.model import StackConfig
from stack.config.workers import jobs_deployment
from stack.config.rules import StackConfigError

__all__ = ["config_from_stack_file", "stack_names"]  # read through stack.config.loader
from stack.model.cost import CostEstimate, monthly_cost
from stack.tools.plan.resources import SECRET, ResourceLine, plain, resource_lines
from stack.tools.preflight.posture import posture_warnings
from stack.model.prices import HOURS_PER_MONTH, MissingPriceError, PriceBook
from stack.model.throughput.compare import Comparison
from stack.model.throughput.estimate import StackThroughput

REPO_ROOT = Path(__file__).resolve().parents[4]


@dataclass
class StackPlan:
    stack: str
    config: StackConfig | None
    resources: list[ResourceLine] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    capacity: CapacityReport | None = None
    cost: CostEstimate | None = None
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    offline_run: bool = False
    throughput: StackThroughput | None = None
    throughput_note: str = ""
    measured: Comparison | None = None
    """The stack's measured figures beside the estimates (--measured)."""

    @property
    def monthly_cost_usd(self) -> float | None:
        return self.cost.monthly_usd if self.cost else None

    def summary(self) -> dict[str, Any]:
        """The figures the side-by-side table compares."""
        out: dict[str, Any] = {
            "monthly_cost_usd": self.monthly_cost_usd,
            "monthly_cost_at_max_usd": self.cost.monthly_usd_at_max if self.cost else None,
            "monthly_cost_at_min_usd": self.cost.monthly_usd_at_min if self.cost else None,
        }
        if self.config is None:
            return out
        pools = self.config.node_pools
        out["nodes_desired"] = sum(p.desired_size for p in pools.values())
        out["nodes_max"] = sum(p.max_size for p in pools.values())
        out["nodes_needed"] = sum(p.nodes_needed for p in self.capacity.pools) if self.capacity else None
        out["web_vcpu"] = workload_vcpus(self.config, "web")
        out["worker_vcpu"] = workload_vcpus(self.config, "worker")
        out["usd_per_worker_vcpu"] = self.usd_per_worker_vcpu()
        t = self.throughput
        out["jobs_per_hour"] = None if t is None or t.jobs_per_hour is None else round(t.jobs_per_hour, 1)
        out["usd_per_1000_jobs"] = None if t is None or t.usd_per_1000_jobs is None else round(t.usd_per_1000_jobs, 4)
        out["requests_per_second"] = None if t is None or t.web.per_second is None else round(t.web.per_second, 2)
        out["usd_per_million_requests"] = (
            None if t is None or t.usd_per_million_requests is None else round(t.usd_per_million_requests, 4)
        )
        return out

    def usd_per_worker_vcpu(self) -> float | None:
        """Monthly node cost of the pool of the workers of the jobs queue per vCPU its pods request.

        Idle capacity and co-located pods (web, system) count against it, so a pool of
        nodes that packs worker pods badly shows a higher figure.
        """
        if self.config is None or self.capacity is None or self.cost is None:
            return None
        pool_name = jobs_deployment(self.config).spec.node_pool
        pool = self.config.node_pools[pool_name]
        requested = self.capacity.pool(pool_name).requested_cpu_millicores / 1000
        hourly = next(
            (i.unit_usd for i in self.cost.items if i.category == "nodes" and i.item.startswith(f"node pool {pool_name}:")),
            None,
        )
        if hourly is None or requested == 0:
            return None
        return round(pool.desired_size * hourly * HOURS_PER_MONTH / requested, 2)

    def as_json(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "offline_run": self.offline_run,
            "resources": [r.as_json() for r in self.resources],
            "resource_count": len(self.resources),
            "outputs": self.outputs,
            "capacity": {
                "system_pool": self.capacity.system_pool,
                "pools": [p.as_json() for p in self.capacity.pools],
            }
            if self.capacity
            else None,
            "cost": self.cost.as_json() if self.cost else None,
            "monthly_cost_usd": self.monthly_cost_usd,
            "summary": self.summary(),
            "throughput": self.throughput.as_json() if self.throughput else None,
            **({"measured": self.measured.as_json()} if self.measured else {}),
            "errors": list(self.errors),
            "warnings": list(self.warnings),
        }


def _masked_outputs(outputs: dict[str, Any], secret: set[str]) -> dict[str, Any]:
    return {k: SECRET if k in secret else plain(v) for k, v in outputs.items()}


def plan_stack(
    stack: str,
    *,
    prices: PriceBook | None = None,
    root: Path = REPO_ROOT,
    run_program: bool = True,
    recorded_sink: list[Any] | None = None,
) -> StackPlan:
    """Run the program offline for `stack` and compute capacity and cost from its config.

    When the program fails, capacity and cost still come from the stack file, and the failure
    is an error of the plan.
    """
    plan = StackPlan(stack=stack, config=None)
    if run_program:
        try:
            from stack.tools.offline import run_stack
            from stack.tools.preflight import preflight
        except ImportError as e:
            plan.errors.append(f"the offline runner is not available ({e}); resources not listed")
        else:
            try:
                run = run_stack(stack, root)
            except StackConfigError as e:
                plan.errors.append(str(e))
                return plan
            except Exception as e:  # the program's own failure, reported, not raised
                plan.errors.append(f"the program failed offline: {type(e).__name__}: {e}")
            else:
                plan.offline_run = True
                plan.config = run.config
                # What AWS would refuse that no mock checks (stack.tools.preflight).
                plan.errors += [str(v) for v in preflight(run)]
                plan.resources = resource_lines(run.resources)
                plan.outputs = _masked_outputs(run.outputs, set(getattr(run, "secret_outputs", set())))
                if recorded_sink is not None:
                    recorded_sink.extend(run.resources)
    if plan.config is None:
        try:
            plan.config = config_from_stack_file(stack, root)
        except StackConfigError as e:
            plan.errors.append(str(e))
            return plan
    plan.warnings += [str(p) for p in posture_warnings(plan.config)]
    plan.capacity = capacity_report(plan.config)
    plan.errors += [f"{p.path}: {p.message}" for p in plan.capacity.errors]
    plan.warnings += [f"{p.path}: {p.message}" for p in plan.capacity.warnings]
    try:
        plan.cost = monthly_cost(plan.config, prices)
    except MissingPriceError as e:
        plan.errors.append(f"cost: {e}")
    else:
        plan.warnings += [
            n for n in plan.cost.notes if n.startswith(("nodePools.", "cluster.supportType"))
        ]
    return plan
