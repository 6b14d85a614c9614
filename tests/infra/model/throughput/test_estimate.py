"""Throughput and $ per unit of work against hand-computed cases (fixture: bench-small.json).

The fixture's figures: worker `-c 1` 0.25 CPU s/job at ratio 0.8, `-c 2` ratio 0.6; uWSGI
(its HTTP router) 1x8: db requests 5 CPU ms, threads limit 200 req/s, ratio 0.9; io requests 1 CPU ms,
threads limit 160 req/s, ratio 0.95.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from stack.model.prices import bundled_price_book
from stack.model.throughput.estimate import ResultsSet, stack_throughput
from stack.model.throughput.results import ResultsError, default_results, load_results
from tests.infra.support.configs import small_config
from tests.infra.support.benchmarks import BENCH_SMALL as FIXTURE

PRICES = bundled_price_book()
# m4.large $0.10/h plus a 20 GiB gp3 root volume at $0.08 per GB-month over 730 hours.
M4_NODE_HOUR = 0.10 + 20 * 0.08 / 730
# CPU the system pods request on the pool that holds them: CoreDNS 2 x 100m, metrics-server
# 100m, the load balancer controller 2 x 0m, KEDA (operator 2 x 100m, metrics server 100m,
# webhooks 100m), the Cluster Autoscaler 100m, the job reconciler's pod 100m and the CloudWatch
# observability add-on's operator 100m.
SYSTEM_CPU = 2 * 100 + 100 + 2 * 0 + 4 * 100 + 100 + 100 + 100  # 1000m
# An m4.large node after DaemonSets: 2000m - 70m kube-reserved - 150m (aws-node, kube-proxy)
# - 300m (the CloudWatch agent 250m, Fluent Bit 50m).
M4_ROOM_CPU = 2000 - 70 - 150 - 300  # 1480m


def results(*paths: Path) -> ResultsSet:
    return ResultsSet(tuple(load_results(p) for p in (paths or (FIXTURE,))))


def fixture_with(tmp_path: Path, name: str, **changes: Any) -> Path:
    document = json.loads(FIXTURE.read_text())
    for dotted, value in changes.items():
        target = document
        *parents, last = dotted.split(".")
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        target[last] = value
    path = tmp_path / name
    path.write_text(json.dumps(document))
    return path


def test_worker_jobs_per_hour_and_cost_per_1000_jobs_by_hand() -> None:
    # worker: 500m request, -c 1 -> half a vCPU / 0.25 s x 0.8 = 1.6 jobs/s = 5760 jobs/h.
    t = stack_throughput(small_config(), results(), PRICES)
    assert t.jobs_per_hour == pytest.approx(5760)
    assert t.jobs_per_hour_at_max == pytest.approx(5760)  # maxReplicas 1
    assert t.worker.per_pod is not None and t.worker.per_pod.pod_bound == "cpu request"
    # One node (desired size); CPU requested on it: web 250m + worker 500m + system pods 1000m
    # = 1750m.
    worker_hourly = M4_NODE_HOUR * 500 / (250 + 500 + SYSTEM_CPU)
    assert t.usd_per_1000_jobs == pytest.approx(worker_hourly / 5760 * 1000)
    # At max: web 2 x 250m + worker 500m + system 1000m = 2000m, more than one node's 1480m:
    # the Cluster Autoscaler scales out to 2 nodes (= maxSize).
    assert 2 * 250 + 500 + SYSTEM_CPU > M4_ROOM_CPU
    assert t.usd_per_1000_jobs_at_max == pytest.approx(2 * M4_NODE_HOUR * 500 / 2000 / 5760 * 1000)
    # Scaled in (minReplicas 1 each): the same pods as configured, 1750m, which need two nodes
    # as well.
    assert 250 + 500 + SYSTEM_CPU > M4_ROOM_CPU
    assert t.jobs_per_hour_at_min == pytest.approx(5760)
    assert t.worker.usd_per(1000, at_min=True) == pytest.approx(2 * worker_hourly / 5760 * 1000)


def test_web_requests_per_second_and_cost_per_million_by_hand() -> None:
    # web: 250m request; db: CPU limit 0.25 x 1000 / 5 = 50 < threads 200 -> 50 x 0.9 = 45 req/s.
    t = stack_throughput(small_config(), results(), PRICES)
    assert t.web.per_second == pytest.approx(45)
    assert t.web.per_second_at_max == pytest.approx(90)  # maxReplicas 2
    assert t.web.per_pod is not None and t.web.per_pod.pod_bound == "cpu request"
    # io: CPU limit 250 > threads 160 -> 160 x 0.95 = 152 req/s, bound by threads.
    assert t.web.by_http_workload["io"] == pytest.approx(152)
    web_hourly = M4_NODE_HOUR * 250 / (250 + 500 + SYSTEM_CPU)  # 250m of 1650m on one node
    assert t.usd_per_million_requests == pytest.approx(web_hourly / (45 * 3600) * 1e6)


def test_a_full_core_per_child_is_bound_by_concurrency_and_packs_by_cpu() -> None:
    config = small_config(
        worker={
            "nodePool": "default",
            "replicas": 2,
            "concurrency": 2,
            "cpuMillicores": 2500,
            "memoryMib": 896,  # two children on 30 M pixel images (stack.config.memory)
            "autoscaling": {"minReplicas": 1, "maxReplicas": 2, "queueLengthPerReplica": 2},
        },
        nodePools={"default": {"instanceType": "m5.xlarge", "minSize": 1, "desiredSize": 2, "maxSize": 3}},
    )
    t = stack_throughput(config, results(), PRICES)
    # 2 children use 2 of the 2.5 requested vCPUs: 2 / 0.25 x 0.6 (the -c 2 shape) = 4.8 jobs/s a pod.
    assert t.worker.per_pod is not None and t.worker.per_pod.pod_bound == "concurrency"
    assert t.jobs_per_hour == pytest.approx(2 * 4.8 * 3600)
    assert t.worker.node_bound == "cpu"


def test_workers_scaled_to_zero_serve_no_jobs_and_cost_nothing_scaled_in() -> None:
    config = small_config(
        worker={
            "nodePool": "default",
            "replicas": 1,
            "cpuMillicores": 500,
            "memoryMib": 512,
            "autoscaling": {"minReplicas": 0, "maxReplicas": 1},
        }
    )
    t = stack_throughput(config, results(), PRICES)
    assert t.jobs_per_hour == pytest.approx(5760)  # at the configured replica
    assert t.jobs_per_hour_at_min == 0
    assert t.worker.usd_per(1000, at_min=True) is None  # no jobs served: no cost per job
    assert t.as_json()["usdPer1000JobsAtMin"] is None
    # Scaled in, the one node holds web 250m and the system pods 900m: web pays 250 / 1150.
    assert t.web.per_second_at_min == pytest.approx(45)
    web_hourly_at_min = M4_NODE_HOUR * 250 / (250 + SYSTEM_CPU)
    assert t.web.usd_per(1_000_000, at_min=True) == pytest.approx(web_hourly_at_min / (45 * 3600) * 1e6)


def test_workers_alone_on_a_pool_scaled_to_zero_are_charged_nothing() -> None:
    config = small_config(
        nodePools={
            "default": {"instanceType": "m4.large", "minSize": 1, "desiredSize": 1, "maxSize": 2},
            "workers": {
                "instanceType": "m4.large",
                "minSize": 0,
                "desiredSize": 1,
                "maxSize": 2,
                "taints": [{"key": "workload", "value": "worker", "effect": "NoSchedule"}],
            },
        },
        worker={
            "nodePool": "workers",
            "replicas": 1,
            "cpuMillicores": 500,
            "memoryMib": 512,
            "autoscaling": {"minReplicas": 0, "maxReplicas": 2},
        },
    )
    t = stack_throughput(config, results(), PRICES)
    assert t.jobs_per_hour_at_min == 0
    assert t.worker.usd_per_hour_at_min == 0  # the pool scales in to minSize 0 nodes
    # At max: 2 worker pods of 500m fit one node of the workers pool, which pays it whole.
    assert t.jobs_per_hour_at_max == pytest.approx(2 * 5760)
    assert t.usd_per_1000_jobs_at_max == pytest.approx(M4_NODE_HOUR / (2 * 5760) * 1000)


def test_maxima_beyond_max_size_are_not_estimated_and_say_so() -> None:
    config = small_config(
        web={
            "nodePool": "default",
            "replicas": 1,
            "cpuMillicores": 250,
            "memoryMib": 448,
            "autoscaling": {"minReplicas": 1, "maxReplicas": 10},
        }
    )
    # At max: web 10 x 250m + worker 500m + system 800m = 3800m, more than 2 x 1780m: 3 nodes,
    # but maxSize is 2; the Cluster Autoscaler stops there and web pods stay Pending.
    assert 10 * 250 + 500 + SYSTEM_CPU > 2 * M4_ROOM_CPU
    t = stack_throughput(config, results(), PRICES)
    assert t.web.per_second_at_max is None and t.usd_per_million_requests_at_max is None
    assert t.jobs_per_hour_at_max is None  # the workers share the pool that cannot grow enough
    assert t.web.per_second == pytest.approx(45)  # the configured replicas are still estimated
    assert any("maxReplicas 10" in p and "maxSize is 2" in p for p in t.problems)


def test_pod_slots_bind_first_for_tiny_pods() -> None:
    # An r5.large has 26 pod slots, 1780m and 14481 MiB left after DaemonSets: 50m web pods of
    # 448 MiB (what uWSGI 1x8 needs) would fit 35 by CPU and 32 by memory.
    config = small_config(
        nodePools={"default": {"instanceType": "r5.large", "minSize": 1, "desiredSize": 1, "maxSize": 2}},
        web={
            "nodePool": "default",
            "replicas": 1,
            "cpuMillicores": 50,
            "memoryMib": 448,
            "autoscaling": {"minReplicas": 1, "maxReplicas": 2},
        },
    )
    assert stack_throughput(config, results(), PRICES).web.node_bound == "pod slots"


def test_burstable_types_count_only_their_baseline() -> None:
    config = small_config(
        nodePools={"default": {"instanceType": "t3.medium", "minSize": 1, "desiredSize": 1, "maxSize": 2}}
    )
    t = stack_throughput(config, results(), PRICES)
    # t3.medium: 20% of each vCPU sustained -> 0.5 x 0.2 / 0.25 x 0.8 = 0.32 jobs/s.
    assert t.jobs_per_hour == pytest.approx(0.32 * 3600)
    assert t.worker.per_pod is not None
    assert "20% baseline" in t.worker.per_pod.basis.describe()
    assert not t.worker.per_pod.basis.measured


def test_results_measured_on_the_pools_type_replace_the_assumption(tmp_path: Path) -> None:
    on_m4 = fixture_with(
        tmp_path, "m4.json", **{"run.machine.instance_type": "m4.large", "jobs.0.cpu_s_per_job": 0.5}
    )
    t = stack_throughput(small_config(), results(FIXTURE, on_m4), PRICES)
    assert t.jobs_per_hour == pytest.approx(5760 / 2)
    assert t.worker.per_pod is not None and t.worker.per_pod.basis.measured
    assert "m4.json" in t.worker.per_pod.results
    # A pool of another type still uses the machine's figures and says it is an assumption.
    other = small_config(
        nodePools={"default": {"instanceType": "m5.large", "minSize": 1, "desiredSize": 1, "maxSize": 2}}
    )
    t5 = stack_throughput(other, results(FIXTURE, on_m4), PRICES)
    assert t5.jobs_per_hour == pytest.approx(5760)
    assert t5.worker.per_pod is not None and "assumed" in t5.worker.per_pod.basis.describe()


def test_an_unmeasured_web_shape_is_not_estimated_and_says_so() -> None:
    config = small_config(
        web={
            "nodePool": "default",
            "replicas": 1,
            "threads": 16,
            "cpuMillicores": 250,
            "memoryMib": 640,  # 16 threads, each holding an upload
            "autoscaling": {"minReplicas": 1, "maxReplicas": 2},
        }
    )
    t = stack_throughput(config, results(), PRICES)
    assert t.web.per_second is None and t.usd_per_million_requests is None
    assert t.jobs_per_hour == pytest.approx(5760)  # the workers are still estimated
    assert any("granian blocking-threads 1x16" in p and "granian blocking-threads 1x8" in p for p in t.problems)


def test_the_web_shape_follows_the_configured_server() -> None:
    # The fixture measured uWSGI 1x8 only: the same 1x8 on gunicorn is another shape.
    config = small_config(
        web={
            "nodePool": "default",
            "replicas": 1,
            "server": "gunicorn",
            "cpuMillicores": 250,
            "memoryMib": 384,
            "autoscaling": {"minReplicas": 1, "maxReplicas": 2},
        }
    )
    t = stack_throughput(config, results(), PRICES)
    assert t.web.per_second is None
    assert any("gunicorn gthread 1x8" in p and "granian blocking-threads 1x8" in p for p in t.problems)


def test_an_unmeasured_concurrency_is_not_estimated_and_says_so() -> None:
    config = small_config(
        worker={
            "nodePool": "default",
            "replicas": 1,
            "concurrency": 3,
            "cpuMillicores": 500,
            "memoryMib": 1280,  # three children on 30 M pixel images
            "autoscaling": {"minReplicas": 1, "maxReplicas": 1, "queueLengthPerReplica": 3},
        }
    )
    t = stack_throughput(config, results(), PRICES)
    assert t.jobs_per_hour is None
    assert any("worker.concurrency 3" in p and "-c 1, -c 2" in p for p in t.problems)


def test_a_results_file_that_breaks_the_contract_is_refused_naming_the_field(tmp_path: Path) -> None:
    bad = fixture_with(tmp_path, "bad.json", **{"jobs.0.cpu_s_per_job": -1})
    with pytest.raises(ResultsError, match=r"jobs\.0\.cpu_s_per_job"):
        load_results(bad)
    other_schema = fixture_with(tmp_path, "v3.json", schema="django-eks-bench/3")
    with pytest.raises(ResultsError, match="django-eks-bench/3"):
        load_results(other_schema)
    bad_v2 = fixture_with(tmp_path, "bad-v2.json", schema="django-eks-bench/2", **{"jobs.0.cpu_efficiency": 0})
    with pytest.raises(ResultsError, match=r"jobs\.0\.cpu_efficiency"):
        load_results(bad_v2)
    not_json = tmp_path / "x.json"
    not_json.write_text("{")
    with pytest.raises(ResultsError, match="not JSON"):
        load_results(not_json)
    with pytest.raises(ResultsError, match="cannot be read"):
        load_results(tmp_path / "missing.json")


def test_a_version_2_file_with_whole_path_limits_is_read_like_version_1(tmp_path: Path) -> None:
    v2 = fixture_with(tmp_path, "v2.json", schema="django-eks-bench/2",
                      **{"jobs.0.limit_path_jobs_per_s": 3.2, "jobs.0.ratio_path": 0.8, "jobs.0.cpu_efficiency": 0.85})
    job = load_results(v2).results.jobs[0]
    assert (job.limit_path_jobs_per_s, job.ratio_path, job.cpu_efficiency) == (3.2, 0.8, 0.85)
    assert job.cpu_s_per_job == load_results(FIXTURE).results.jobs[0].cpu_s_per_job


def test_default_results_are_the_newest_run_of_each_machine_kind(tmp_path: Path) -> None:
    older = fixture_with(tmp_path, "20261101T000000Z-laptop.json")
    newer = fixture_with(tmp_path, "20261102T000000Z-laptop.json")
    on_c5 = fixture_with(tmp_path, "20261101T120000Z-node.json", **{"run.machine.instance_type": "c5.large"})
    chosen = default_results(tmp_path)
    assert chosen == [on_c5, newer]
    assert older not in chosen
    assert default_results(tmp_path / "none") == []


def two_queues_config(**beat: Any) -> Any:
    """small_config's web on m4.large, the jobs queue at -c 1 x 500m and an `io` queue at -c 4
    x 250m on the same node, beat too when given."""
    return small_config(
        worker=None,
        workers={
            "cpu": {"queues": ["jobs"], "nodePool": "default", "replicas": 1, "cpuMillicores": 500,
                    "memoryMib": 512, "autoscaling": {"minReplicas": 1, "maxReplicas": 1}},
            "io": {"queues": ["io"], "nodePool": "default", "replicas": 1, "concurrency": 4, "cpuMillicores": 250,
                   "memoryMib": 256, "autoscaling": {"minReplicas": 1, "maxReplicas": 1, "queueLengthPerReplica": 4}},
        },
        nodePools={"default": {"instanceType": "m4.large", "minSize": 1, "desiredSize": 2, "maxSize": 2}},
        **({"beat": beat} if beat else {}),
    )  # fmt: skip


def test_each_worker_deployment_is_charged_its_share_and_only_the_jobs_queue_has_a_rate() -> None:
    t = stack_throughput(two_queues_config(cpuMillicores=150, memoryMib=192), results(), PRICES)
    assert [w.workload for w in t.workers] == ["worker-cpu", "worker-io"]
    cpu, io = t.workers
    # The jobs queue's Deployment runs the measured task: 0.5 vCPU / 0.25 s x 0.8 = 5760 jobs/h.
    assert cpu.per_second is not None and cpu.per_second * 3600 == pytest.approx(5760)
    assert t.jobs_per_hour == pytest.approx(5760)
    # Two nodes (desired size) shared by CPU requested: web 250m, cpu 500m, io 250m, beat 150m
    # and the system pods 900m.
    total = 250 + 500 + 250 + 150 + SYSTEM_CPU
    assert cpu.usd_per_hour == pytest.approx(2 * M4_NODE_HOUR * 500 / total)
    assert io.usd_per_hour == pytest.approx(2 * M4_NODE_HOUR * 250 / total)
    assert cpu.usd_per(1000) == pytest.approx(2 * M4_NODE_HOUR * 500 / total / 5760 * 1000)
    # The io queue's tasks were never measured: its node cost is known, its rate is not.
    assert io.per_pod is None and io.usd_per(1000) is None
    assert any(p.startswith("workers.io (queues io): the benchmark measures the tasks of the 'jobs' queue only")
               for p in t.problems)  # fmt: skip
    rows = t.as_json()["workers"]
    assert rows["worker-cpu"]["queues"] == ["jobs"] and rows["worker-cpu"]["tasksPerHour"] == pytest.approx(5760)
    assert rows["worker-cpu"]["usdPer1000Tasks"] == pytest.approx(round(cpu.usd_per(1000) or 0, 4))
    assert rows["worker-io"]["usdPer1000Tasks"] is None and rows["worker-io"]["tasksPerHour"] is None


def test_a_single_worker_keeps_the_json_without_per_deployment_rows() -> None:
    assert "workers" not in stack_throughput(small_config(), results(), PRICES).as_json()
