"""One node (stack/model/nodes.py): allocatable CPU and memory as the EKS AMIs reserve them, the
room left after the DaemonSets, and the packing of pods onto nodes."""

from __future__ import annotations

import pytest

from stack.model.nodes import (
    kube_reserved_cpu_millicores,
    kube_reserved_memory_mib,
    node_allocatable,
    nodes_needed,
    pods_per_node,
    room_after_daemonsets,
)
from stack.config.model import ObservabilityConfig
from stack.model.pod_requests import (
    BASE_CLUSTER_PODS,
    DAEMONSET_PODS,
    OBSERVED_CLUSTER_PODS,
    SYSTEM_PODS,
    PodRequests,
    cluster_pods,
)


def test_m4_large_allocatable_by_hand() -> None:
    node = node_allocatable("m4.large")
    # 20 pods: 2 ENIs x (10 IPv4 - 1) + 2.
    assert node.max_pods == 20
    # 2000m - 6% of the first core (60m) - 1% of the second (10m).
    assert node.cpu_millicores == 1930
    # 8 GiB = 8192 MiB; OS overhead ceil(7.5% of 8192) = 615; kube-reserved 11 x 20 + 255 = 475;
    # eviction threshold 100.
    assert node.memory_mib == 8192 - 615 - 475 - 100 == 7002


def test_cpu_reservation_steps() -> None:
    # 60 + 10 + 5 + 5 for cores 1-4, then 2.5m for each of cores 5-8.
    assert kube_reserved_cpu_millicores(8) == pytest.approx(90)
    assert kube_reserved_cpu_millicores(4) == pytest.approx(80)
    assert kube_reserved_memory_mib(29) == 574


def test_daemonsets_take_cpu_and_slots_on_every_node() -> None:
    room = room_after_daemonsets(node_allocatable("m4.large"), DAEMONSET_PODS)
    assert room.cpu_millicores == 1930 - sum(p.cpu_millicores for p in DAEMONSET_PODS) == 1780
    assert room.pods == 20 - 3
    assert all(p.source for p in (*OBSERVED_CLUSTER_PODS.daemonsets, *OBSERVED_CLUSTER_PODS.system))


def test_the_observability_add_on_takes_its_agents_share_of_every_node() -> None:
    # The CloudWatch agent (250m/128Mi) and Fluent Bit (50m/25Mi) on every node, the add-on's
    # operator (100m/64Mi) with the system pods; nothing of them without the add-on.
    assert cluster_pods(ObservabilityConfig()) == OBSERVED_CLUSTER_PODS
    assert cluster_pods(ObservabilityConfig(enabled=False)) == BASE_CLUSTER_PODS
    room = room_after_daemonsets(node_allocatable("m4.large"), OBSERVED_CLUSTER_PODS.daemonsets)
    assert (room.cpu_millicores, room.memory_mib, room.pods) == (1780 - 300, 7002 - 153, 17 - 2)
    # A 1000m worker and a 500m web pod no longer share a node: 1500m > 1480m.
    assert nodes_needed(room, [PodRequests("w", 1000, 768), PodRequests("web", 500, 512)]) == 2
    extra = [p for p in OBSERVED_CLUSTER_PODS.system if p not in SYSTEM_PODS]
    assert [(p.cpu_millicores, p.memory_mib) for p in extra] == [(100, 64)]


def test_pods_per_node_is_the_tightest_resource() -> None:
    room = room_after_daemonsets(node_allocatable("m4.large"), DAEMONSET_PODS)
    assert pods_per_node(room, PodRequests("worker", 1000, 768)) == 1  # 1780m holds one 1000m pod
    assert pods_per_node(room, PodRequests("worker", 850, 768)) == 2
    assert pods_per_node(room, PodRequests("tiny", 10, 10)) == 17  # pod slots bind first
    assert pods_per_node(room, PodRequests("huge", 100, 8000)) == 0


def test_nodes_needed_packs_first_fit_decreasing() -> None:
    room = room_after_daemonsets(node_allocatable("m4.large"), DAEMONSET_PODS)
    pods = [PodRequests("w", 1000, 768)] * 3 + [PodRequests("web", 500, 512)] * 3
    # Each node takes one 1000m pod plus one 500m pod (1500m of 1780m).
    assert nodes_needed(room, pods) == 3
    assert nodes_needed(room, []) == 0
