"""The benchmark as a Job on a chosen node pool (`benchmark.nodePool`)."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest

from stack.config.model import NODE_POOL_LABEL, StackConfig
from stack.config.rules import StackConfigError, parse_stack_config
from stack.model.nodes import node_allocatable, room_after_daemonsets
from stack.model.pod_requests import cluster_pods
from stack.workloads import benchmark as b
from stack.workloads.worker import worker_deployment
from tests.infra.support.stack_files import project_config, run_edited
from tests.infra.support.manifests import launched

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/service:0.1.0"


def config_with(benchmark: dict[str, Any] | None, base: str = "exp-c5-workers") -> StackConfig:
    raw = project_config(base)
    if benchmark is not None:
        raw["benchmark"] = benchmark
    return parse_stack_config(raw)


def test_no_job_unless_a_pool_is_chosen() -> None:
    assert b.benchmark_manifests(config_with(None), IMAGE) == []


def test_job_measures_the_chosen_pool_with_the_stack_database_and_redis() -> None:
    config = config_with({"nodePool": "workers"})
    (job,) = b.benchmark_manifests(config, IMAGE)
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == IMAGE
    # The run's output to stderr, then the marker line and the results JSON end the Job's log.
    assert launched(container)[1:] == ["-m", "benchmarks", "run", "--out", "/tmp/bench-results.json"]
    assert {"name": "BENCH_RESULTS_MARKER", "value": b.RESULTS_MARKER} in container["env"]
    assert {"name": "BENCH_INSTANCE_TYPE", "value": "c5.large"} in container["env"]
    # DATABASE_URL and REDIS_URL reach it as they reach the workers: from the app Secret.
    assert container["envFrom"] == worker_deployment(config, IMAGE)["spec"]["template"]["spec"]["containers"][0]["envFrom"]
    assert pod["nodeSelector"] == {NODE_POOL_LABEL: "workers"}
    assert pod["tolerations"] == [{"key": "workload", "operator": "Equal", "value": "worker", "effect": "NoSchedule"}]
    assert pod["restartPolicy"] == "Never" and job["spec"]["backoffLimit"] == 0


def test_job_claims_a_whole_node_of_its_pool() -> None:
    config = config_with({"nodePool": "workers"})
    (job,) = b.benchmark_manifests(config, IMAGE)
    requests = job["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]
    room = room_after_daemonsets(node_allocatable("c5.large"), cluster_pods(config.observability).daemonsets)
    # Everything a c5.large has left after its DaemonSets: no worker pod fits beside it.
    assert requests == {"cpu": f"{room.cpu_millicores}m", "memory": f"{room.memory_mib}Mi"}
    assert room.cpu_millicores < config.worker.cpu_millicores * 2


def test_fast_mode_and_a_new_image_make_a_new_job() -> None:
    full = b.benchmark_job(config_with({"nodePool": "workers"}), IMAGE)
    fast = b.benchmark_job(config_with({"nodePool": "workers", "fast": True}), IMAGE)
    assert "--fast" in launched(fast["spec"]["template"]["spec"]["containers"][0])
    other_image = b.benchmark_job(config_with({"nodePool": "workers"}), IMAGE.replace("0.1.0", "0.2.0"))
    names = {j["metadata"]["name"] for j in (full, fast, other_image)}
    assert len(names) == 3


@pytest.mark.parametrize("pool", ["web", "workers"])
def test_job_validates_against_the_kubernetes_schema(pool: str) -> None:
    config = config_with({"nodePool": pool})
    for job in b.benchmark_manifests(config, IMAGE):
        kubernetes_validate.validate(job, f"{config.cluster.version}.0", strict=True)


def test_an_unknown_pool_is_refused_naming_the_key() -> None:
    with pytest.raises(StackConfigError, match=r"benchmark\.nodePool: names node pool 'gpu'"):
        config_with({"nodePool": "gpu"})


@pytest.mark.usefixtures("clean_pulumi_runtime")
def test_the_program_registers_the_job_only_when_configured() -> None:
    def enable(raw: dict[str, Any]) -> None:
        raw["django-eks:benchmark"] = {"nodePool": "workers"}

    run = run_edited(enable, base="exp-c5-workers")
    jobs = [r for r in run.resources if r.type == "kubernetes:batch/v1:Job"]
    bench = [j for j in jobs if j.inputs["metadata"]["name"].startswith("benchmark-workers-")]
    assert len(bench) == 1
    assert bench[0].inputs["metadata"]["annotations"]["pulumi.com/skipAwait"] == "true"
    spec = bench[0].inputs["spec"]["template"]["spec"]
    assert spec["nodeSelector"] == {NODE_POOL_LABEL: "workers"}
    plain = run_edited(lambda raw: None, base="exp-c5-workers")
    assert not any(
        r.inputs["metadata"]["name"].startswith("benchmark-")
        for r in plain.resources
        if r.type == "kubernetes:batch/v1:Job"
    )


def test_plan_warns_that_the_job_takes_a_node_or_cannot_get_one() -> None:
    from stack.model.capacity import capacity_report

    config = config_with({"nodePool": "workers"})
    needed = capacity_report(config).pool("workers").nodes_needed
    assert needed == 3  # exp-c5-workers: 3 workers of 1000m, one per c5.large
    (warning,) = b.benchmark_problems(config, needed)
    assert "claims a whole c5.large node of nodePools.workers" in warning
    raw = project_config("exp-c5-workers")
    raw["benchmark"] = {"nodePool": "workers"}
    raw["nodePools"]["workers"].update(desiredSize=3, maxSize=3)
    full = parse_stack_config(raw)
    (pending,) = b.benchmark_problems(full, capacity_report(full).pool("workers").nodes_needed)
    assert "nodePools.workers.maxSize is 3: the Job stays Pending" in pending
    assert b.benchmark_problems(config_with(None), needed) == []
