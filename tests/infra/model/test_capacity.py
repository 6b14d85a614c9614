"""The capacity report (stack/model/capacity.py): what in a stack file does not fit its pools,
as errors and warnings naming the keys."""

from __future__ import annotations

from stack.model.capacity import capacity_report
from stack.config.rules import parse_stack_config
from tests.infra.support.configs import small_config, split_pools_config
from tests.infra.support.stack_files import project_config


def test_max_replicas_beyond_max_nodes_is_an_error_naming_the_keys() -> None:
    report = capacity_report(split_pools_config(worker_max_replicas=12))
    messages = [str(p) for p in report.errors]
    assert messages == [
        "error: nodePools.workers.maxSize: worker.autoscaling.maxReplicas 12 needs 12 nodes of "
        "c5.large but nodePools.workers.maxSize is 4"
    ]
    # c5.large after the DaemonSets (the CloudWatch agent and Fluent Bit included): 1480m, one
    # 850m worker per node.
    assert report.pool("workers").nodes_needed == 3
    assert report.pool("workers").nodes_needed_at_max == 12


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
    # 7002Mi allocatable less the CloudWatch agent's 128Mi and Fluent Bit's 25Mi.
    assert "6849Mi" in errors[0].message


def test_more_desired_nodes_than_the_pods_need_is_a_warning() -> None:
    config = small_config(
        nodePools={"default": {"instanceType": "m4.large", "minSize": 1, "desiredSize": 3, "maxSize": 3}}
    )
    report = capacity_report(config)
    assert report.errors == []
    assert [w.path for w in report.warnings] == ["nodePools.default.desiredSize"]
    assert "3 nodes of m4.large" in report.warnings[0].message
    # The system pods (900m with the CloudWatch add-on's operator), web 250m and worker 500m
    # need two nodes of 1480m: one idle.
    assert "fit on 2; 1 node idle" in report.warnings[0].message


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


def test_each_worker_deployment_beat_and_cron_job_are_counted_on_their_own_pool() -> None:
    raw = project_config("exp-queues")
    report = capacity_report(parse_stack_config(raw))
    general, compute = report.pool("general"), report.pool("compute")
    assert general.workloads == ("web", "worker-io", "beat", "cron-clearsessions")
    assert compute.workloads == ("worker-cpu",)
    # c5.large after DaemonSets: 1780m; a 1000m pod each, so 2 nodes for 2 replicas, 6 for 6.
    assert (compute.pods_per_node["worker-cpu"], compute.nodes_needed, compute.nodes_needed_at_max) == (1, 2, 6)
    assert (compute.min_replicas["worker-cpu"], compute.nodes_at_min) == (0, 0)
    assert general.replicas == {"web": 2, "worker-io": 1, "beat": 1, "cron-clearsessions": 1}
    assert report.errors == []


def test_a_worker_deployment_beyond_its_pool_is_an_error_naming_its_key() -> None:
    raw = project_config("exp-queues")
    raw["nodePools"]["compute"]["maxSize"] = 4
    messages = [str(p) for p in capacity_report(parse_stack_config(raw)).errors]
    assert messages == [
        "error: nodePools.compute.maxSize: workers.cpu.autoscaling.maxReplicas 6 needs 6 nodes of "
        "c5.large but nodePools.compute.maxSize is 4"
    ]
