from __future__ import annotations

import pytest

from stack.model.capacity import (
    DAEMONSET_PODS,
    SYSTEM_PODS,
    PodRequests,
    capacity_report,
    kube_reserved_cpu_millicores,
    kube_reserved_memory_mib,
    node_allocatable,
    nodes_needed,
    pods_per_node,
    room_after_daemonsets,
    system_pool,
)
from tests.infra.support.configs import small_config, split_pools_config


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
    room = room_after_daemonsets(node_allocatable("m4.large"))
    assert room.cpu_millicores == 1930 - sum(p.cpu_millicores for p in DAEMONSET_PODS) == 1780
    assert room.pods == 20 - 3
    assert all(p.source for p in (*DAEMONSET_PODS, *SYSTEM_PODS))


def test_pods_per_node_is_the_tightest_resource() -> None:
    room = room_after_daemonsets(node_allocatable("m4.large"))
    assert pods_per_node(room, PodRequests("worker", 1000, 768)) == 1  # 1780m holds one 1000m pod
    assert pods_per_node(room, PodRequests("worker", 850, 768)) == 2
    assert pods_per_node(room, PodRequests("tiny", 10, 10)) == 17  # pod slots bind first
    assert pods_per_node(room, PodRequests("huge", 100, 8000)) == 0


def test_nodes_needed_packs_first_fit_decreasing() -> None:
    room = room_after_daemonsets(node_allocatable("m4.large"))
    pods = [PodRequests("w", 1000, 768)] * 3 + [PodRequests("web", 500, 512)] * 3
    # Each node takes one 1000m pod plus one 500m pod (1500m of 1780m).
    assert nodes_needed(room, pods) == 3
    assert nodes_needed(room, []) == 0


def test_system_pods_go_to_the_web_pool_when_untainted() -> None:
    config = split_pools_config(worker_max_replicas=6)
    assert system_pool(config) == "web"
    report = capacity_report(config)
    assert report.pool("web").runs_system_pods
    assert not report.pool("workers").runs_system_pods


def test_system_pods_go_to_the_first_untainted_pool_otherwise() -> None:
    taint = [{"key": "workload", "value": "web", "effect": "NoSchedule"}]
    config = small_config(
        nodePools={
            "a": {"instanceType": "m4.large", "taints": taint},
            "b": {"instanceType": "m4.large"},
            "c": {"instanceType": "m4.large"},
        },
        web={"nodePool": "a", "replicas": 1, "autoscaling": {"minReplicas": 1, "maxReplicas": 2}},
        worker={"nodePool": "c", "replicas": 1, "autoscaling": {"minReplicas": 1, "maxReplicas": 1}},
    )
    assert system_pool(config) == "b"


def test_max_replicas_beyond_max_nodes_is_an_error_naming_the_keys() -> None:
    report = capacity_report(split_pools_config(worker_max_replicas=12))
    messages = [str(p) for p in report.errors]
    assert messages == [
        "error: nodePools.workers.maxSize: worker.autoscaling.maxReplicas 12 needs 6 nodes of "
        "c5.large but nodePools.workers.maxSize is 4"
    ]
    assert report.pool("workers").nodes_needed == 2
    assert report.pool("workers").nodes_needed_at_max == 6


def test_a_pod_that_fits_no_node_is_an_error() -> None:
    config = small_config(
        web={
            "nodePool": "default",
            "replicas": 1,
            "cpuMillicores": 250,
            "memoryMib": 8000,
            "autoscaling": {"minReplicas": 1, "maxReplicas": 2},
        }
    )
    errors = capacity_report(config).errors
    assert len(errors) == 1
    assert errors[0].path == "web.cpuMillicores/web.memoryMib"
    assert "fits no m4.large node of nodePools.default" in errors[0].message
    assert "7002Mi" in errors[0].message


def test_more_desired_nodes_than_the_pods_need_is_a_warning() -> None:
    config = small_config(
        nodePools={"default": {"instanceType": "m4.large", "minSize": 1, "desiredSize": 3, "maxSize": 3}}
    )
    report = capacity_report(config)
    assert report.errors == []
    assert [w.path for w in report.warnings] == ["nodePools.default.desiredSize"]
    assert "3 nodes of m4.large" in report.warnings[0].message
    assert "2 nodes idle" in report.warnings[0].message


def test_a_min_size_above_what_the_scaled_in_pods_need_is_a_warning() -> None:
    # Workers may scale to zero, but their pool keeps two nodes: paid for, idle.
    config = small_config(
        nodePools={
            "default": {"instanceType": "m4.large", "minSize": 1, "desiredSize": 1, "maxSize": 2},
            "workers": {"instanceType": "c5.large", "minSize": 2, "desiredSize": 2, "maxSize": 4,
                        "taints": [{"key": "workload", "value": "worker", "effect": "NoSchedule"}]},
        },
        worker={"nodePool": "workers", "replicas": 1, "cpuMillicores": 850, "memoryMib": 768,
                "autoscaling": {"minReplicas": 0, "maxReplicas": 4}},
    )
    report = capacity_report(config)
    workers = report.pool("workers")
    assert (workers.nodes_needed_at_min, workers.nodes_at_min) == (0, 2)
    messages = [str(w) for w in report.warnings if w.path == "nodePools.workers.minSize"]
    assert messages == [
        "warning: nodePools.workers.minSize: 2 nodes of c5.large at least, but "
        "worker.autoscaling.minReplicas 0 need 0 nodes; 2 nodes idle when scaled in"
    ]
