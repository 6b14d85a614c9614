"""How many pods fit on a node, and how many nodes each pool needs.

Pure functions over `StackConfig` and the instance catalog; no engine, no cloud.

A node's allocatable resources follow the EKS AMIs (amazon-eks-ami, see data/SOURCES.md):

* kube-reserved memory: 11 MiB per pod the node may run (max pods) + 255 MiB;
* kube-reserved CPU: 6% of the first core, 1% of the second, 0.5% of cores 3 and 4 and
  0.25% of every core above 4;
* hard eviction threshold: 100 MiB of free memory.

The kernel and firmware keep part of the instance's memory before kubelet sees it. We subtract
7.5% of the listed memory, rounded up to a MiB: Karpenter's default
`VM_MEMORY_OVERHEAD_PERCENT` (0.075), chosen by its maintainers as a safe bound across EC2
types. It is conservative: real m4.large nodes report a little more.

Pods that every node runs (DaemonSets) and the cluster's system pods (CoreDNS, metrics-server,
the AWS Load Balancer Controller) take CPU, memory and pod slots before our workloads do; their
requests and sources are in `DAEMONSET_PODS` and `SYSTEM_PODS`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from stack.config.catalog import InstanceType, instance_type
from stack.config.model import NodePoolConfig, StackConfig

MEMORY_OVERHEAD_FRACTION = 0.075
"""Memory the OS keeps out of the instance's listed size (Karpenter's VM_MEMORY_OVERHEAD_PERCENT)."""

EVICTION_HARD_MIB = 100
"""kubelet `evictionHard: memory.available<100Mi` on the EKS AMIs."""


@dataclass(frozen=True)
class PodRequests:
    """What one pod asks the scheduler for."""

    name: str
    cpu_millicores: int
    memory_mib: int
    source: str = ""


# Requests of the add-ons on every node, as shipped by default. A container without requests
# asks for nothing, but its pod still takes a slot of the node's max pods (hostNetwork pods too:
# kubelet counts every pod).
DAEMONSET_PODS: tuple[PodRequests, ...] = (
    PodRequests(
        "aws-node (vpc-cni)",
        cpu_millicores=50,
        memory_mib=0,
        source="aws/amazon-vpc-cni-k8s config/master/aws-k8s-cni.yaml @f3efb24 (v1.14.0): "
        "containers aws-node 25m + aws-eks-nodeagent 25m CPU, no memory request; "
        "chart values.yaml resources.requests.cpu 25m",
    ),
    PodRequests(
        "kube-proxy",
        cpu_millicores=100,
        memory_mib=0,
        source="EKS kube-proxy add-on DaemonSet as dumped in eksctl-io/eksctl "
        "pkg/addons/default/testdata/sample-1.25.json @16f64c8: requests cpu 100m",
    ),
    PodRequests(
        "eks-pod-identity-agent",
        cpu_millicores=0,
        memory_mib=0,
        source="aws/eks-pod-identity-agent charts/eks-pod-identity-agent/values.yaml @00bc058: "
        "resources: {} (no requests)",
    ),
)

RECONCILER_POD = PodRequests(
    "job-reconciler",
    cpu_millicores=100,
    memory_mib=256,
    source="stack.workloads.reconciler: the CronJob's pod, one at a time (concurrencyPolicy Forbid); "
    "Django plus one query's worth of rows (ids and states only, never image data)",
)
"""Ours, but placed like the system pods: on the worker pool it would hold a node every minute
and keep a pool whose workers scale to zero from ever having zero nodes."""

# Cluster-wide pods without tolerations for our taints: they run on a pool that accepts them.
SYSTEM_PODS: tuple[PodRequests, ...] = (
    *(
        PodRequests(
            f"coredns-{i}",
            cpu_millicores=100,
            memory_mib=70,
            source="EKS coredns add-on Deployment (2 replicas) in eksctl-io/eksctl "
            "pkg/addons/default/testdata/sample-1.25.json @16f64c8: requests cpu 100m, memory 70Mi",
        )
        for i in (1, 2)
    ),
    PodRequests(
        "metrics-server",
        cpu_millicores=100,
        memory_mib=200,
        source="kubernetes-sigs/metrics-server charts/metrics-server/values.yaml @026af89: "
        "requests cpu 100m, memory 200Mi",
    ),
    *(
        PodRequests(
            f"aws-load-balancer-controller-{i}",
            cpu_millicores=0,
            memory_mib=0,
            source="kubernetes-sigs/aws-load-balancer-controller "
            "helm/aws-load-balancer-controller/values.yaml @0079377: replicaCount 2, resources: {}",
        )
        for i in (1, 2)
    ),
    *(
        PodRequests(
            name,
            cpu_millicores=100,
            memory_mib=100,
            source="kedacore/charts keda/values.yaml (chart 2.20.2): resources.operator, "
            ".metricServer and .webhooks requests cpu 100m, memory 100Mi; replicas as set in "
            "stack.addons.keda (operator 2, metrics server 1, webhooks 1)",
        )
        for name in ("keda-operator-1", "keda-operator-2", "keda-metrics-server", "keda-webhooks")
    ),
    PodRequests(
        "cluster-autoscaler",
        cpu_millicores=100,
        memory_mib=600,
        source="requests set in stack.addons.cluster_autoscaler (the upstream example "
        "Deployment's: cpu 100m, memory 600Mi)",
    ),
    RECONCILER_POD,
)


# --- one node -------------------------------------------------------------------------------


def kube_reserved_cpu_millicores(vcpu: int) -> float:
    """CPU the EKS AMI reserves for kubelet and the container runtime."""
    reserved = 0.0
    for core in range(1, vcpu + 1):
        if core == 1:
            reserved += 1000 * 0.06
        elif core == 2:
            reserved += 1000 * 0.01
        elif core <= 4:
            reserved += 1000 * 0.005
        else:
            reserved += 1000 * 0.0025
    return reserved


def kube_reserved_memory_mib(max_pods: int) -> int:
    """Memory the EKS AMI reserves for kubelet: 11 MiB per pod plus 255 MiB."""
    return 11 * max_pods + 255


def memory_overhead_mib(memory_gib: float) -> int:
    """Memory the kernel and firmware keep before kubelet reports capacity."""
    return math.ceil(memory_gib * 1024 * MEMORY_OVERHEAD_FRACTION)


@dataclass(frozen=True)
class NodeAllocatable:
    """What the scheduler can hand out on one node of a type."""

    instance_type: str
    vcpu: int
    memory_gib: float
    max_pods: int
    cpu_millicores: int
    memory_mib: int

    @property
    def pods(self) -> int:
        return self.max_pods


def node_allocatable(itype: InstanceType | str) -> NodeAllocatable:
    """Allocatable CPU (millicores, rounded down) and memory (MiB) of one node."""
    it = instance_type(itype) if isinstance(itype, str) else itype
    cpu = math.floor(it.vcpu * 1000 - kube_reserved_cpu_millicores(it.vcpu))
    memory = (
        math.floor(it.memory_gib * 1024)
        - memory_overhead_mib(it.memory_gib)
        - kube_reserved_memory_mib(it.max_pods)
        - EVICTION_HARD_MIB
    )
    return NodeAllocatable(it.name, it.vcpu, it.memory_gib, it.max_pods, cpu, memory)


@dataclass(frozen=True)
class NodeRoom:
    """What is left on a node for our pods once the DaemonSets run on it."""

    cpu_millicores: int
    memory_mib: int
    pods: int

    def fits(self, pod: PodRequests) -> bool:
        return (
            self.pods >= 1
            and pod.cpu_millicores <= self.cpu_millicores
            and pod.memory_mib <= self.memory_mib
        )

    def minus(self, pod: PodRequests) -> NodeRoom:
        return NodeRoom(
            self.cpu_millicores - pod.cpu_millicores,
            self.memory_mib - pod.memory_mib,
            self.pods - 1,
        )


def room_after_daemonsets(
    node: NodeAllocatable, daemonsets: tuple[PodRequests, ...] = DAEMONSET_PODS
) -> NodeRoom:
    return NodeRoom(
        node.cpu_millicores - sum(p.cpu_millicores for p in daemonsets),
        node.memory_mib - sum(p.memory_mib for p in daemonsets),
        node.max_pods - len(daemonsets),
    )


def pods_per_node(room: NodeRoom, pod: PodRequests) -> int:
    """How many copies of `pod` fit on an otherwise empty node."""
    if not room.fits(pod):
        return 0
    limits = [room.pods]
    if pod.cpu_millicores:
        limits.append(room.cpu_millicores // pod.cpu_millicores)
    if pod.memory_mib:
        limits.append(room.memory_mib // pod.memory_mib)
    return min(limits)


def nodes_needed(room: NodeRoom, pods: list[PodRequests]) -> int:
    """Nodes to hold every pod: first-fit decreasing, like a scheduler packing empty nodes.

    Returns 0 for no pods. Pods that fit no node are not counted (see `pool_capacity`).
    """
    nodes: list[NodeRoom] = []
    ordered = sorted(
        (p for p in pods if room.fits(p)),
        key=lambda p: (p.cpu_millicores, p.memory_mib),
        reverse=True,
    )
    for pod in ordered:
        for i, free in enumerate(nodes):
            if free.fits(pod):
                nodes[i] = free.minus(pod)
                break
        else:
            nodes.append(room.minus(pod))
    return len(nodes)


# --- pools ----------------------------------------------------------------------------------

Severity = Literal["error", "warning"]
Workload = Literal["web", "worker"]
WORKLOADS: tuple[Workload, ...] = ("web", "worker")


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
    workloads: tuple[Workload, ...]
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
    problems: list[CapacityProblem] = field(default_factory=list)

    @property
    def errors(self) -> list[CapacityProblem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[CapacityProblem]:
        return [p for p in self.problems if p.severity == "warning"]

    def pool(self, name: str) -> PoolCapacity:
        return next(p for p in self.pools if p.pool == name)


def system_pool(config: StackConfig) -> str:
    """The pool we count CoreDNS, metrics-server and the load balancer controller against.

    The scheduler may spread them over every pool without a NoSchedule/NoExecute taint; the
    model puts them all on one, which is conservative for that pool: the web pool when it
    accepts them, otherwise the first such pool in the stack file's order.
    """
    pools = config.node_pools
    web_pool = pools.get(config.web.node_pool)
    if web_pool is not None and web_pool.schedules_system_pods:
        return config.web.node_pool
    for name, pool in pools.items():
        if pool.schedules_system_pods:
            return name
    raise ValueError("no node pool accepts system pods (every pool has a NoSchedule/NoExecute taint)")


def workload_pod(config: StackConfig, workload: Workload) -> PodRequests:
    if workload == "web":
        # The web pod is the app container plus its buffering proxy (stack/workloads/proxy.py).
        from stack.model import proxy

        web = config.web
        return PodRequests(workload, web.cpu_millicores + proxy.CPU_MILLICORES, web.memory_mib + proxy.MEMORY_MIB)
    return PodRequests(workload, config.worker.cpu_millicores, config.worker.memory_mib)


def _gib(mib: int) -> str:
    return f"{mib / 1024:.2f} GiB"


def _need_message(
    parts: list[str], nodes: int, pool: NodePoolConfig, pool_name: str, key: str, size: int
) -> str:
    s = "s" if nodes != 1 else ""
    verb = "needs" if len(parts) == 1 else "need"
    return (
        f"{' and '.join(parts)} {verb} {nodes} node{s} of {pool.instance_type} "
        f"but nodePools.{pool_name}.{key} is {size}"
    )


def pool_capacity(
    config: StackConfig, pool_name: str, problems: list[CapacityProblem], system: str
) -> PoolCapacity:
    pool = config.node_pools[pool_name]
    node = node_allocatable(pool.instance_type)
    room = room_after_daemonsets(node)
    workloads: tuple[Workload, ...] = tuple(
        w for w in WORKLOADS if (config.web if w == "web" else config.worker).node_pool == pool_name
    )
    system_pods = list(SYSTEM_PODS) if pool_name == system else []
    per_node: dict[str, int] = {}
    replicas: dict[str, int] = {}
    maxima: dict[str, int] = {}
    minima: dict[str, int] = {}
    pods_now: list[PodRequests] = list(system_pods)
    pods_max: list[PodRequests] = list(system_pods)
    pods_min: list[PodRequests] = list(system_pods)
    for w in workloads:
        spec = config.web if w == "web" else config.worker
        pod = workload_pod(config, w)
        per_node[w] = pods_per_node(room, pod)
        replicas[w] = spec.replicas
        maxima[w] = spec.autoscaling.max_replicas
        pods_now += [pod] * spec.replicas
        pods_max += [pod] * spec.autoscaling.max_replicas
        minima[w] = spec.autoscaling.min_replicas
        pods_min += [pod] * spec.autoscaling.min_replicas
        if per_node[w] == 0:
            problems.append(
                CapacityProblem(
                    "error",
                    f"{w}.cpuMillicores/{w}.memoryMib",
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
        max_parts = [f"{w}.autoscaling.maxReplicas {maxima[w]}" for w in workloads]
        now_parts = [f"{w}.replicas {replicas[w]}" for w in workloads]
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
            [f"{w}.replicas {replicas[w]}" for w in workloads] + (["the system pods"] if system_pods else [])
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
            [f"{w}.autoscaling.minReplicas {minima[w]}" for w in workloads]
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
    return CapacityReport(pools=pools, system_pool=system, problems=problems)


def workload_vcpus(config: StackConfig, workload: Workload) -> float:
    """vCPUs the workload's pods request at the configured replicas."""
    spec = config.web if workload == "web" else config.worker
    return spec.replicas * spec.cpu_millicores / 1000
