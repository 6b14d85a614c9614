"""Where the cluster's system pods are counted (stack/model/pod_requests.py): the web pool when
it accepts them, else the first pool that does."""

from __future__ import annotations

from stack.model.capacity import capacity_report
from stack.model.pod_requests import system_pool
from tests.infra.support.configs import small_config, split_pools_config


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
