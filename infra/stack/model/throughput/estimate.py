"""A stack's throughput and cost per unit of work, from its config and benchmark results.

Per workload, at the configured replicas, scaled in (every workload at its
`autoscaling.minReplicas`; the workers' may be 0 under KEDA, and then they serve nothing) and
at the autoscaling maxima:

* workers: jobs per hour = pods x usable vCPUs per pod x (benchmark CPUs per vCPU) /
  (CPU seconds per job) x (the ratio to the CPU limit the matched shape reached);
* web: requests per second = pods x min(threads limit, CPU limit) x (the matched shape's
  ratio), the threads limit being the measured processes x threads / latency of the shape and
  the CPU limit usable vCPUs x (benchmark CPUs per vCPU) / (CPU seconds per request).

What one pod serves comes from `pods` (the matching measured shape).

`$ per 1000 jobs` and `$ per million requests` are the node cost the workload's pods are
charged for, divided by what they serve at full use: each pool's node-hours split between the
pods on it by the CPU they request, so idle nodes count against the configuration. The node
counts are the cost estimate's (`stack.model.cost`): desired size at the configured replicas, and
the nodes the Cluster Autoscaler keeps scaled in or scales out to (`PoolCapacity.nodes_at_min`,
`.nodes_at_max`: the nodes the pods need, within minSize..maxSize). When a pool's maxima need
more nodes than its maxSize, the Cluster Autoscaler cannot reach them and the pods beyond stay
Pending: the at-max figures of the workloads on that pool are then not estimated. Control plane, NAT, ALB, Redis and RDS are not in them (they
do not grow with the load).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from stack.model.capacity import CapacityReport, capacity_report
from stack.model.nodes import NodeRoom, node_allocatable, room_after_daemonsets
from stack.model.pod_requests import PodRequests, cluster_pods, system_pool, workload_shapes
from stack.config.model import StackConfig, WebConfig, WorkerConfig
from stack.config.names import DEFAULT_QUEUE
from stack.config.workers import WorkerDeployment, worker_deployments
from stack.model.prices import HOURS_PER_MONTH, PriceBook
from stack.model.throughput.cpu import CpuBasis, assumed_basis, measured_basis
from stack.model.throughput.pods import HEADLINE_HTTP_WORKLOAD, PerPod, web_per_pod, worker_rate
from stack.model.throughput.results import LoadedResults

Scale = Literal["replicas", "min", "max"]
"""Configured replicas, scaled in (autoscaling minima) or scaled out (autoscaling maxima)."""


def packing_bound(room: NodeRoom, pod: PodRequests) -> str:
    """Which of the node's resources runs out first as pods of one kind are added."""
    limits = {"pod slots": room.pods}
    if pod.cpu_millicores:
        limits["cpu"] = room.cpu_millicores // pod.cpu_millicores
    if pod.memory_mib:
        limits["memory"] = room.memory_mib // pod.memory_mib
    return min(limits, key=lambda k: (limits[k], k != "cpu"))


@dataclass
class WorkloadThroughput:
    workload: str
    """`web`, or the worker Deployment's name (`worker`, `worker-<key>`)."""
    unit: str
    pool: str
    instance_type: str
    replicas: int
    max_replicas: int
    per_pod: PerPod | None
    node_bound: str
    usd_per_hour: float | None = None
    usd_per_hour_at_max: float | None = None
    unmatched: str | None = None
    by_http_workload: dict[str, float] = field(default_factory=dict)
    min_replicas: int = 1
    usd_per_hour_at_min: float | None = None
    max_reachable: bool = True
    """False when the pool's maxima need more nodes than its maxSize (pods stay Pending)."""
    queues: tuple[str, ...] = ()
    """A worker Deployment's Celery queues."""

    @property
    def per_second(self) -> float | None:
        return None if self.per_pod is None else self.per_pod.per_second * self.replicas

    @property
    def per_second_at_min(self) -> float | None:
        """What the scaled-in pods serve: 0 for workers KEDA scaled to zero."""
        return None if self.per_pod is None else self.per_pod.per_second * self.min_replicas

    @property
    def per_second_at_max(self) -> float | None:
        if self.per_pod is None or not self.max_reachable:
            return None
        return self.per_pod.per_second * self.max_replicas

    def usd_per(self, amount: float, *, at_max: bool = False, at_min: bool = False) -> float | None:
        """Node cost of serving `amount` units (jobs or requests) at full use.

        None when nothing is served (no figure, or no pods scaled in).
        """
        if at_max and at_min:
            raise ValueError("usd_per: at_max or at_min, not both")
        rate = self.per_second_at_max if at_max else self.per_second_at_min if at_min else self.per_second
        hourly = self.usd_per_hour_at_max if at_max else self.usd_per_hour_at_min if at_min else self.usd_per_hour
        if not rate or hourly is None:
            return None
        return hourly / (rate * 3600) * amount

    def as_json(self) -> dict[str, Any]:
        p = self.per_pod
        out: dict[str, Any] = {
            "pool": self.pool,
            "instanceType": self.instance_type,
            "replicas": self.replicas,
            "minReplicas": self.min_replicas,
            "maxReplicas": self.max_replicas,
            "maxReachable": self.max_reachable,
            "nodeBound": self.node_bound,
            "nodeUsdPerHour": _round(self.usd_per_hour),
            "nodeUsdPerHourAtMin": _round(self.usd_per_hour_at_min),
            "nodeUsdPerHourAtMax": _round(self.usd_per_hour_at_max),
        }
        if p is None:
            out["unmatched"] = self.unmatched
            return out
        out |= {
            "shape": p.shape,
            "podBound": p.pod_bound,
            "perPodPerSecond": _round(p.per_second),
            "cpuBasis": p.basis.describe(),
            "cpuBasisMeasured": p.basis.measured,
            "results": p.results,
        }
        return out


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


@dataclass
class StackThroughput:
    web: WorkloadThroughput
    workers: list[WorkloadThroughput]
    """Every worker Deployment's figures; the one consuming the service's jobs queue first."""
    problems: list[str] = field(default_factory=list)
    per_deployment: bool = False
    """The stack configures `workers`: the JSON lists every Deployment under `workers`."""

    @property
    def worker(self) -> WorkloadThroughput:
        """The worker Deployment that runs the service's jobs (the benchmark measured them)."""
        return self.workers[0]

    @property
    def jobs_per_hour(self) -> float | None:
        r = self.worker.per_second
        return None if r is None else r * 3600

    @property
    def jobs_per_hour_at_min(self) -> float | None:
        r = self.worker.per_second_at_min
        return None if r is None else r * 3600

    @property
    def jobs_per_hour_at_max(self) -> float | None:
        r = self.worker.per_second_at_max
        return None if r is None else r * 3600

    @property
    def usd_per_1000_jobs(self) -> float | None:
        return self.worker.usd_per(1000)

    @property
    def usd_per_1000_jobs_at_max(self) -> float | None:
        return self.worker.usd_per(1000, at_max=True)

    @property
    def usd_per_million_requests(self) -> float | None:
        return self.web.usd_per(1_000_000)

    @property
    def usd_per_million_requests_at_max(self) -> float | None:
        return self.web.usd_per(1_000_000, at_max=True)

    def as_json(self) -> dict[str, Any]:
        return {
            "jobsPerHour": _round(self.jobs_per_hour, 1),
            "jobsPerHourAtMin": _round(self.jobs_per_hour_at_min, 1),
            "jobsPerHourAtMax": _round(self.jobs_per_hour_at_max, 1),
            "requestsPerSecond": _round(self.web.per_second, 2),
            "requestsPerSecondAtMin": _round(self.web.per_second_at_min, 2),
            "requestsPerSecondAtMax": _round(self.web.per_second_at_max, 2),
            "requestWorkload": HEADLINE_HTTP_WORKLOAD,
            "requestsPerSecondByWorkload": {k: round(v, 2) for k, v in self.web.by_http_workload.items()},
            "usdPer1000Jobs": _round(self.usd_per_1000_jobs),
            "usdPer1000JobsAtMin": _round(self.worker.usd_per(1000, at_min=True)),
            "usdPer1000JobsAtMax": _round(self.usd_per_1000_jobs_at_max),
            "usdPerMillionRequests": _round(self.usd_per_million_requests),
            "usdPerMillionRequestsAtMin": _round(self.web.usd_per(1_000_000, at_min=True)),
            "usdPerMillionRequestsAtMax": _round(self.usd_per_million_requests_at_max),
            "web": self.web.as_json(),
            "worker": self.worker.as_json(),
            **({"workers": {w.workload: _deployment_json(w) for w in self.workers}} if self.per_deployment else {}),
            "problems": list(self.problems),
        }


def _deployment_json(w: WorkloadThroughput) -> dict[str, Any]:
    """A worker Deployment's figures: its queues, tasks per hour and $ per 1000 tasks."""
    rate = w.per_second
    return {
        **w.as_json(),
        "queues": list(w.queues),
        "tasksPerHour": None if rate is None else round(rate * 3600, 1),
        "usdPer1000Tasks": _round(w.usd_per(1000)),
        "usdPer1000TasksAtMax": _round(w.usd_per(1000, at_max=True)),
    }


# --- which results, and what a vCPU is worth -------------------------------------------------


@dataclass(frozen=True)
class ResultsSet:
    """The results files the plan reads: one base, and any measured on EC2 types."""

    files: tuple[LoadedResults, ...]

    def __post_init__(self) -> None:
        if not self.files:
            raise ValueError("a ResultsSet needs at least one results file")

    @property
    def base(self) -> LoadedResults:
        """The newest file measured off EC2 (else the last given): the per-CPU figures."""
        off_ec2 = [f for f in self.files if f.instance_type is None]
        return (off_ec2 or list(self.files))[-1]

    def for_instance_type(self, instance: str) -> tuple[LoadedResults, CpuBasis]:
        on_type = [f for f in self.files if f.instance_type == instance]
        if on_type:
            chosen = on_type[-1]
            return chosen, measured_basis(instance, chosen.label)
        base = self.base
        machine = base.results.run.machine
        where = machine.instance_type or f"{machine.cpu_model}, {machine.cores} CPUs"
        return base, assumed_basis(instance, f"{where} ({base.label})")

    def labels(self) -> list[str]:
        return [f.label for f in self.files]


# --- node cost charged to a workload ---------------------------------------------------------


def _replicas_at(spec_replicas: int, min_replicas: int, max_replicas: int, scale: Scale) -> int:
    return {"replicas": spec_replicas, "min": min_replicas, "max": max_replicas}[scale]


def workload_node_usd_per_hour(
    config: StackConfig,
    workload: str,
    prices: PriceBook,
    *,
    scale: Scale,
    capacity: CapacityReport | None = None,
) -> float:
    """The part of its pool's node cost a workload's pods are charged for (by CPU requested).

    Nodes: desired size at the configured replicas; scaled in or out, the nodes the Cluster
    Autoscaler keeps with every workload at its minimum or maximum (as `stack.model.cost` prices
    them). A workload with no pods (workers scaled to zero) is charged nothing.
    """
    shapes = workload_shapes(config)
    pool_name = next(shape.node_pool for shape in shapes if shape.name == workload)
    pool = config.node_pools[pool_name]
    scaled = (capacity or capacity_report(config)).pool(pool_name)
    nodes = {"replicas": pool.desired_size, "min": scaled.nodes_at_min, "max": scaled.nodes_at_max}[scale]
    node_hourly = prices.ec2_hourly(pool.instance_type) + (
        pool.disk_size_gib * prices.service("ebs_gp3") / HOURS_PER_MONTH
    )
    requested: dict[str, int] = {}
    for shape in shapes:
        if shape.node_pool == pool_name:
            count = _replicas_at(shape.replicas, shape.min_replicas, shape.max_replicas, scale)
            # The web pod's app container only: its proxy's CPU is not charged to the pods
            # here (as the recorded plans have it).
            cpu = config.web.cpu_millicores if shape.name == "web" else shape.pod.cpu_millicores
            requested[shape.name] = count * cpu
    if system_pool(config) == pool_name:
        requested["system"] = sum(p.cpu_millicores for p in cluster_pods(config.observability).system)
    total = sum(requested.values())
    if not requested[workload] or not total:
        return 0.0
    return nodes * node_hourly * requested[workload] / total


# --- the stack ----------------------------------------------------------------------------


def _worker_per_pod(
    config: StackConfig, deployment: WorkerDeployment, results: ResultsSet
) -> PerPod | str:
    """Tasks per second of one pod of `deployment`, or why there is no figure.

    The benchmark measures the service's own task (an image compressed), which runs on the
    jobs queue: a Deployment of other queues runs other tasks, which it never measured.
    """
    pool = config.node_pools[deployment.spec.node_pool]
    loaded, basis = results.for_instance_type(pool.instance_type)
    if DEFAULT_QUEUE not in deployment.queues:
        return (
            f"{deployment.key} (queues {', '.join(deployment.queues)}): the benchmark measures the "
            f"tasks of the {DEFAULT_QUEUE!r} queue only; tasks per hour and $ per 1000 tasks not estimated"
        )
    w = deployment.spec
    return worker_rate(
        loaded.results, concurrency=w.concurrency, cpu_millicores=w.cpu_millicores, basis=basis, label=loaded.label
    )


def stack_throughput(config: StackConfig, results: ResultsSet, prices: PriceBook) -> StackThroughput:
    """Jobs per hour, requests per second and their node cost for a stack, from `results`."""
    problems: list[str] = []
    capacity = capacity_report(config)
    web = config.web
    deployments = sorted(worker_deployments(config), key=lambda d: DEFAULT_QUEUE not in d.queues)
    figures: list[WorkloadThroughput] = []
    entries: list[tuple[str, str, WebConfig | WorkerConfig]] = [
        ("web", "web", web), *((d.name, d.key, d.spec) for d in deployments)
    ]
    for name, key, spec in entries:
        pool = config.node_pools[spec.node_pool]
        room = room_after_daemonsets(node_allocatable(pool.instance_type), cluster_pods(config.observability).daemonsets)
        pod = PodRequests(name, spec.cpu_millicores, spec.memory_mib)
        by_workload: dict[str, float] = {}
        if name == "web":
            loaded, basis = results.for_instance_type(pool.instance_type)
            per_pod = web_per_pod(config, loaded.results, basis, loaded.label, HEADLINE_HTTP_WORKLOAD)
            for http in ("db", "io"):
                other = per_pod if http == HEADLINE_HTTP_WORKLOAD else web_per_pod(
                    config, loaded.results, basis, loaded.label, http
                )
                if isinstance(other, PerPod):
                    by_workload[http] = other.per_second * spec.replicas
            queues: tuple[str, ...] = ()
        else:
            deployment = next(d for d in deployments if d.name == name)
            per_pod = _worker_per_pod(config, deployment, results)
            queues = deployment.queues
        unmatched = per_pod if isinstance(per_pod, str) else None
        if unmatched:
            problems.append(unmatched)
        scaled = capacity.pool(spec.node_pool)
        max_reachable = scaled.nodes_needed_at_max <= pool.max_size
        if not max_reachable:
            problems.append(
                f"{key} at autoscaling.maxReplicas {spec.autoscaling.max_replicas}: the pods of "
                f"nodePools.{spec.node_pool} at their maxima need {scaled.nodes_needed_at_max} nodes but "
                f"its maxSize is {pool.max_size}, so the Cluster Autoscaler cannot place them all; "
                f"{'requests per second' if name == 'web' else 'jobs per hour'} at max not estimated"
            )
        scales: tuple[Scale, ...] = ("replicas", "min", "max")
        hourly = {
            scale: workload_node_usd_per_hour(config, name, prices, scale=scale, capacity=capacity)
            for scale in scales
        }
        figures.append(
            WorkloadThroughput(
                workload=name,
                unit="requests" if name == "web" else "jobs",
                pool=spec.node_pool,
                instance_type=pool.instance_type,
                replicas=spec.replicas,
                max_replicas=spec.autoscaling.max_replicas,
                per_pod=per_pod if isinstance(per_pod, PerPod) else None,
                node_bound=packing_bound(room, pod),
                usd_per_hour=hourly["replicas"],
                usd_per_hour_at_max=hourly["max"],
                unmatched=unmatched,
                by_http_workload=by_workload,
                min_replicas=spec.autoscaling.min_replicas,
                usd_per_hour_at_min=hourly["min"],
                max_reachable=max_reachable,
                queues=queues,
            )
        )
    return StackThroughput(web=figures[0], workers=figures[1:], problems=problems, per_deployment=bool(config.workers))
