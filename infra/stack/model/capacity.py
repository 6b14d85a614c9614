"""How many pods fit on a node of each pool, how many nodes each pool needs (now, at the
autoscaling minima and maxima), and what in the stack file does not fit.

Pure functions over `StackConfig`; no engine, no cloud. The pods' requests are in
pod_requests.py (the DaemonSets and the cluster's system pods take CPU, memory and pod slots
before our workloads do), one node's allocatable resources and the packing in nodes.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from stack.config.model import NodePoolConfig, StackConfig
from stack.model.nodes import NodeAllocatable, NodeRoom, node_allocatable, nodes_needed, pods_per_node, room_after_daemonsets
from stack.model.pod_requests import ClusterPods, PodRequests, cluster_pods, system_pool, workload_shapes

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class CapacityProblem:
    severity: Severity
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.severity}: {self.path}: {self.message}"


@dataclass(frozen=True)
class PoolCapacity:
    pool: str
    instance_type: str
    capacity_type: str
    allocatable: NodeAllocatable
    room: NodeRoom
    runs_system_pods: bool
    workloads: tuple[str, ...]
    """The names of the workloads on the pool (`web`, `worker` or `worker-<key>`, `beat`, `cron-<key>`)."""
    pods_per_node: dict[str, int]
    replicas: dict[str, int]
    max_replicas: dict[str, int]
    nodes_needed: int
    nodes_needed_at_max: int
    min_size: int
    desired_size: int
    max_size: int
    requested_cpu_millicores: int
    min_replicas: dict[str, int]
    nodes_needed_at_min: int

    @property
    def nodes_at_min(self) -> int:
        """Nodes the Cluster Autoscaler scales in to with every workload at its minimum."""
        return min(self.max_size, max(self.min_size, self.nodes_needed_at_min))

    @property
    def nodes_at_max(self) -> int:
        """Nodes the Cluster Autoscaler scales out to with every workload at its maximum
        (never beyond maxSize: the pods that do not fit then stay Pending, an error)."""
        return min(self.max_size, max(self.min_size, self.nodes_needed_at_max))

    def as_json(self) -> dict[str, object]:
        return {
            "pool": self.pool,
            "instanceType": self.instance_type,
            "capacityType": self.capacity_type,
            "allocatable": {
                "cpuMillicores": self.allocatable.cpu_millicores,
                "memoryMib": self.allocatable.memory_mib,
                "pods": self.allocatable.max_pods,
            },
            "afterDaemonSets": {
                "cpuMillicores": self.room.cpu_millicores,
                "memoryMib": self.room.memory_mib,
                "pods": self.room.pods,
            },
            "runsSystemPods": self.runs_system_pods,
            "podsPerNode": dict(self.pods_per_node),
            "replicas": dict(self.replicas),
            "maxReplicas": dict(self.max_replicas),
            "nodesNeeded": self.nodes_needed,
            "nodesNeededAtMax": self.nodes_needed_at_max,
            "minReplicas": dict(self.min_replicas),
            "nodesNeededAtMin": self.nodes_needed_at_min,
            "nodesAtMin": self.nodes_at_min,
            "nodesAtMax": self.nodes_at_max,
            "minSize": self.min_size,
            "desiredSize": self.desired_size,
            "maxSize": self.max_size,
        }


@dataclass(frozen=True)
class CapacityReport:
    pools: list[PoolCapacity]
    system_pool: str
    cluster: ClusterPods
    """The DaemonSets on every node and the system pods on `system_pool`."""
    problems: list[CapacityProblem] = field(default_factory=list)

    @property
    def errors(self) -> list[CapacityProblem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[CapacityProblem]:
        return [p for p in self.problems if p.severity == "warning"]

    def pool(self, name: str) -> PoolCapacity:
        return next(p for p in self.pools if p.pool == name)


def _need_message(
    parts: list[str], nodes: int, pool: NodePoolConfig, pool_name: str, key: str, size: int
) -> str:
    s = "s" if nodes != 1 else ""
    verb = "needs" if len(parts) == 1 else "need"
    return (
        f"{' and '.join(parts)} {verb} {nodes} node{s} of {pool.instance_type} "
        f"but nodePools.{pool_name}.{key} is {size}"
    )


def _part(key: str, field: str, count: int) -> str:
    """`web.replicas 2`; a singleton (beat, a cron job) has no such key: `beat (1 pod)`."""
    if key == "beat" or key.startswith("cronJobs."):
        return f"{key} (1 pod)"
    return f"{key}.{field} {count}"


def pool_capacity(
    config: StackConfig, pool_name: str, problems: list[CapacityProblem], system: str
) -> PoolCapacity:
    pool = config.node_pools[pool_name]
    node = node_allocatable(pool.instance_type)
    cluster = cluster_pods(config.observability)
    room = room_after_daemonsets(node, cluster.daemonsets)
    shapes = [shape for shape in workload_shapes(config) if shape.node_pool == pool_name]
    workloads = tuple(shape.name for shape in shapes)
    keys = {shape.name: shape.key for shape in shapes}
    system_pods = list(cluster.system) if pool_name == system else []
    per_node: dict[str, int] = {}
    replicas: dict[str, int] = {}
    maxima: dict[str, int] = {}
    minima: dict[str, int] = {}
    pods_now: list[PodRequests] = list(system_pods)
    pods_max: list[PodRequests] = list(system_pods)
    pods_min: list[PodRequests] = list(system_pods)
    for shape in shapes:
        w, key, pod = shape.name, shape.key, shape.pod
        per_node[w] = pods_per_node(room, pod)
        replicas[w] = shape.replicas
        maxima[w] = shape.max_replicas
        pods_now += [pod] * shape.replicas
        pods_max += [pod] * shape.max_replicas
        minima[w] = shape.min_replicas
        pods_min += [pod] * shape.min_replicas
        if per_node[w] == 0:
            problems.append(
                CapacityProblem(
                    "error",
                    f"{key}.cpuMillicores/{key}.memoryMib",
                    f"a {w} pod (cpu {pod.cpu_millicores}m, memory {pod.memory_mib}Mi) fits no "
                    f"{pool.instance_type} node of nodePools.{pool_name}: after DaemonSets a node has "
                    f"{room.cpu_millicores}m CPU, {room.memory_mib}Mi memory and {room.pods} pod slots",
                )
            )
    for pod in system_pods:
        if not room.fits(pod):
            problems.append(
                CapacityProblem(
                    "error",
                    f"nodePools.{pool_name}.instanceType",
                    f"system pod {pod.name} (cpu {pod.cpu_millicores}m, memory {pod.memory_mib}Mi) "
                    f"fits no {pool.instance_type} node",
                )
            )
    needed = nodes_needed(room, pods_now)
    needed_max = nodes_needed(room, pods_max)
    needed_min = nodes_needed(room, pods_min)
    fits_all = all(per_node.values())
    if fits_all and workloads:
        max_parts = [_part(keys[w], "autoscaling.maxReplicas", maxima[w]) for w in workloads]
        now_parts = [_part(keys[w], "replicas", replicas[w]) for w in workloads]
        if system_pods:
            max_parts.append("the system pods")
            now_parts.append("the system pods")
        if needed > pool.max_size:
            problems.append(
                CapacityProblem(
                    "error",
                    f"nodePools.{pool_name}.maxSize",
                    _need_message(now_parts, needed, pool, pool_name, "maxSize", pool.max_size),
                )
            )
        elif needed_max > pool.max_size:
            problems.append(
                CapacityProblem(
                    "error",
                    f"nodePools.{pool_name}.maxSize",
                    _need_message(max_parts, needed_max, pool, pool_name, "maxSize", pool.max_size),
                )
            )
        if pool.desired_size < needed <= pool.max_size:
            problems.append(
                CapacityProblem(
                    "warning",
                    f"nodePools.{pool_name}.desiredSize",
                    _need_message(now_parts, needed, pool, pool_name, "desiredSize", pool.desired_size)
                    + "; pods stay Pending until nodes are added",
                )
            )
    if pool.desired_size > needed and fits_all:
        what = " and ".join(
            [_part(keys[w], "replicas", replicas[w]) for w in workloads] + (["the system pods"] if system_pods else [])
        ) or "no pods besides DaemonSets"
        idle = pool.desired_size - needed
        problems.append(
            CapacityProblem(
                "warning",
                f"nodePools.{pool_name}.desiredSize",
                f"{pool.desired_size} nodes of {pool.instance_type}, but {what} fit on {needed}; "
                f"{idle} node{'s' if idle != 1 else ''} idle at the configured replicas",
            )
        )
    if fits_all and needed_min < pool.min_size:
        idle = pool.min_size - needed_min
        what = " and ".join(
            [_part(keys[w], "autoscaling.minReplicas", minima[w]) for w in workloads]
            + (["the system pods"] if system_pods else [])
        ) or "no pods besides DaemonSets"
        problems.append(
            CapacityProblem(
                "warning",
                f"nodePools.{pool_name}.minSize",
                f"{pool.min_size} nodes of {pool.instance_type} at least, but {what} need "
                f"{needed_min} node{'s' if needed_min != 1 else ''}; "
                f"{idle} node{'s' if idle != 1 else ''} idle when scaled in",
            )
        )
    requested = sum(p.cpu_millicores for p in pods_now)
    return PoolCapacity(
        pool=pool_name,
        instance_type=pool.instance_type,
        capacity_type=pool.capacity_type,
        allocatable=node,
        room=room,
        runs_system_pods=bool(system_pods),
        workloads=workloads,
        pods_per_node=per_node,
        replicas=replicas,
        max_replicas=maxima,
        nodes_needed=needed,
        nodes_needed_at_max=needed_max,
        min_size=pool.min_size,
        desired_size=pool.desired_size,
        max_size=pool.max_size,
        requested_cpu_millicores=requested,
        min_replicas=minima,
        nodes_needed_at_min=needed_min,
    )


def capacity_report(config: StackConfig) -> CapacityReport:
    """Per pool: pods per node, nodes needed now and at the autoscaling maxima, and problems."""
    problems: list[CapacityProblem] = []
    system = system_pool(config)
    pools = [pool_capacity(config, name, problems, system) for name in config.node_pools]
    return CapacityReport(pools=pools, system_pool=system, cluster=cluster_pods(config.observability), problems=problems)
