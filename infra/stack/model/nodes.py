"""How much of one node the scheduler can hand out, what is left once the DaemonSets run, and how
many nodes a set of pods needs.

Pure functions over the instance catalog; no engine, no cloud.

A node's allocatable resources follow the EKS AMIs (amazon-eks-ami, see data/SOURCES.md):

* kube-reserved memory: 11 MiB per pod the node may run (max pods) + 255 MiB;
* kube-reserved CPU: 6% of the first core, 1% of the second, 0.5% of cores 3 and 4 and
  0.25% of every core above 4;
* hard eviction threshold: 100 MiB of free memory.

The kernel and firmware keep part of the instance's memory before kubelet sees it. We subtract
7.5% of the listed memory, rounded up to a MiB: Karpenter's default
`VM_MEMORY_OVERHEAD_PERCENT` (0.075), chosen by its maintainers as a safe bound across EC2
types. It is conservative: real m4.large nodes report a little more.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from stack.config.catalog import InstanceType, instance_type
from stack.model.pod_requests import PodRequests

from stack.config.model import NodePoolConfig, StackConfig

MEMORY_OVERHEAD_FRACTION = 0.075
"""Memory the OS keeps out of the instance's listed size (Karpenter's VM_MEMORY_OVERHEAD_PERCENT)."""

EVICTION_HARD_MIB = 100
"""kubelet `evictionHard: memory.available<100Mi` on the EKS AMIs."""


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


def room_after_daemonsets(node: NodeAllocatable, daemonsets: tuple[PodRequests, ...]) -> NodeRoom:
    """`daemonsets`: the stack's (`pod_requests.cluster_pods(config).daemonsets`), which depend
    on its config (the observability add-on's agents run on every node)."""
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
