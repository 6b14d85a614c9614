"""The recommender against a small catalog where the answer is known by hand.

Fixture figures (tests/infra/support/fixtures/bench-small.json): worker `-c 1` 0.25 CPU
s/job at ratio 0.8 (3.2 jobs/s per vCPU), `-c 2` ratio 0.6; granian 1x8 db requests:
threads limit 200 req/s, 5 CPU ms each, ratio 0.9.

A c5.large node has 1780m CPU and 3114 MiB left after DaemonSets (1930m allocatable - 150m); an
m5.large the same CPU (6903 MiB) for $0.096/h instead of $0.085; an m5.xlarge 3770m for $0.192/h.
A node-month is 730 h x price + 20 GiB x $0.08 of gp3. Pods get the memory the memory model
requires (`MEMORY`); the system pods request 1340 MiB.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from stack.model.capacity import capacity_report
from stack.model.nodes import node_allocatable, nodes_needed, room_after_daemonsets
from stack.model.pod_requests import BASE_CLUSTER_PODS, OBSERVED_CLUSTER_PODS, PodRequests
from stack.config.catalog import instance_type, instance_types
from stack.tools.plan.report import REPO_ROOT, config_from_stack_file, plan_stack
from stack.config.model import StackConfig
from stack.model.cost import monthly_cost
from stack.model.prices import bundled_price_book
from stack.tools.plan.cli import main as plan_main
from stack.tools.recommend.cli import recommend
from stack.tools.recommend.search import MemoryRule, web_choices, web_pod, worker_choices
from stack.config.memory import web_memory_needed_mib, worker_memory_needed_mib
from stack.tools.recommend.stack_file import assemble, base_cluster_pods, base_document, memory_rule
from stack.model.throughput.estimate import ResultsSet
from stack.model.throughput.results import load_results
from tests.infra.support.benchmarks import BENCH_SMALL as FIXTURE

RESULTS = ResultsSet((load_results(FIXTURE),))
PRICES = bundled_price_book()
SMALL_CATALOG = [instance_type(n) for n in ("m5.large", "c5.large", "m5.xlarge")]
MEMORY = MemoryRule(max_pixels=30_000_000)
"""dev's pixel limit, one upload slot per web process: a -c 1 worker needs 512 MiB, -c 2 896
MiB; a uWSGI 1x8 web pod 440 MiB (stack.config.memory)."""


# The search on a cluster without the CloudWatch observability add-on, whose by-hand figures
# below count aws-node and kube-proxy (150m) on every node and 900m of system pods; the add-on's
# share is test_the_observability_add_on_narrows_the_worker_split.
CLUSTER = BASE_CLUSTER_PODS


def node_month(price: float) -> float:
    return price * 730 + 20 * 0.08


def test_workers_for_20000_jobs_an_hour() -> None:
    # 5.56 jobs/s. On c5.large, two pods of 890m (the node split in two) serve 2 x 0.89 x 3.2
    # = 5.70 jobs/s and fit on one node; with the spare node: 2 nodes. Whole-core pods would
    # need 3 nodes, -c 2 pods as many; m5.large is the same shape at a higher price and
    # m5.xlarge costs twice a c5.large per node with the same 2-node minimum.
    best = worker_choices(SMALL_CATALOG, RESULTS, 20000, memory=MEMORY, disk_gib=20, prices=PRICES, cluster=CLUSTER)[0]
    assert (best.instance_type, best.concurrency, best.cpu_millicores) == ("c5.large", 1, 890)
    assert (best.replicas, best.nodes) == (2, 2)
    assert best.usd_per_month == pytest.approx(2 * node_month(0.085))
    assert best.served_per_second * 3600 == pytest.approx(2 * 0.89 * 3.2 * 3600)


def test_without_the_cheapest_type_the_next_is_chosen() -> None:
    catalog = [t for t in SMALL_CATALOG if t.name != "c5.large"]
    best = worker_choices(catalog, RESULTS, 20000, memory=MEMORY, disk_gib=20, prices=PRICES, cluster=CLUSTER)[0]
    assert (best.instance_type, best.nodes, best.cpu_millicores) == ("m5.large", 2, 890)
    assert best.usd_per_month == pytest.approx(2 * node_month(0.096))


def test_workers_for_40000_jobs_an_hour() -> None:
    # 11.1 jobs/s: c5.large, 4 pods of 890m (11.39 jobs/s) on 2 nodes + 1 spare: $190.95;
    # m5.xlarge, 4 pods of 942m (4 per node, 12.06 jobs/s) on 1 node + 1 spare: $283.52.
    best = worker_choices(SMALL_CATALOG, RESULTS, 40000, memory=MEMORY, disk_gib=20, prices=PRICES, cluster=CLUSTER)[0]
    assert (best.instance_type, best.nodes, best.replicas) == ("c5.large", 3, 4)
    assert best.usd_per_month == pytest.approx(3 * node_month(0.085))


def test_web_for_300_requests_a_second() -> None:
    # Every web pod also carries its buffering proxy (100m, 64 MiB). 1000m app containers
    # serve min(200, 1000/5) x 0.9 = 180 req/s: 2 pods of 1100m, with the system pods (900m,
    # 100m each) 2 c5.large nodes (1780m each), plus the spare: 3, margin 0.2. The
    # two-per-node split, 1780m / 2 - 100m = 790m, serves min(200, 158) x 0.9 = 142.2 req/s:
    # 3 pods; two 890m pods fill one node, the third and the system pods need 1790m, more
    # than a second node: 3 nodes and the spare, dearer.
    best = web_choices(SMALL_CATALOG, RESULTS, 300, memory=MEMORY, disk_gib=20, prices=PRICES, cluster=CLUSTER)[0]
    assert (best.instance_type, best.cpu_millicores, best.replicas, best.nodes) == ("c5.large", 1000, 2, 3)
    assert best.served_per_second == pytest.approx(360)
    assert best.margin == pytest.approx(360 / 300 - 1)


def test_the_observability_add_on_narrows_the_worker_split() -> None:
    # With the CloudWatch agent (250m) and Fluent Bit (50m) on every node a c5.large has 1480m
    # left, not 1780m: two workers a node get 740m each, not 890m (2 x 0.74 x 3.2 = 4.7 jobs/s,
    # short of 20,000 jobs/h = 5.56 jobs/s), so the pool needs a third node: one -c 2 pod of
    # 1480m a node (2 x 1.48 x 3.2 x efficiency) on two nodes and the spare, or three 740m pods
    # on as many; the search keeps the larger margin.
    plain = worker_choices(SMALL_CATALOG, RESULTS, 20000, memory=MEMORY, disk_gib=20, prices=PRICES, cluster=CLUSTER)[0]
    observed = worker_choices(
        SMALL_CATALOG, RESULTS, 20000, memory=MEMORY, disk_gib=20, prices=PRICES, cluster=OBSERVED_CLUSTER_PODS
    )[0]
    assert (plain.cpu_millicores, plain.replicas, plain.nodes) == (890, 2, 2)
    assert (observed.instance_type, observed.nodes) == ("c5.large", 3)
    assert observed.usd_per_month == pytest.approx(1.5 * plain.usd_per_month)


@pytest.mark.parametrize("jobs_per_hour", [0, 5000, 60000])
def test_every_choice_survives_a_node_loss(jobs_per_hour: float) -> None:
    for choice in worker_choices(SMALL_CATALOG, RESULTS, jobs_per_hour, memory=MEMORY, disk_gib=20, prices=PRICES, cluster=CLUSTER):
        room = room_after_daemonsets(node_allocatable(choice.instance_type), CLUSTER.daemonsets)
        assert choice.memory_mib == MEMORY.worker_mib(choice.concurrency)
        pods = [PodRequests("worker", choice.cpu_millicores, choice.memory_mib)] * choice.replicas
        assert nodes_needed(room, pods) <= choice.nodes - 1
        assert choice.nodes >= 2 and choice.replicas >= 2
        assert choice.served_per_second * 3600 >= jobs_per_hour
    for web in web_choices(SMALL_CATALOG, RESULTS, 500, memory=MEMORY, disk_gib=20, prices=PRICES, cluster=CLUSTER):
        room = room_after_daemonsets(node_allocatable(web.instance_type), CLUSTER.daemonsets)
        assert web.shape is not None and web.memory_mib == MEMORY.web_mib(web.shape)
        pods = [*CLUSTER.system, *[web_pod(web.cpu_millicores, web.memory_mib)] * web.replicas]
        assert nodes_needed(room, pods) <= web.nodes - 1


def log_usd(config: StackConfig) -> float:
    """A stack's container logs and metric samples a month: they grow with its jobs and pods
    (test_observability)."""
    return sum(
        i.monthly_usd
        for i in monthly_cost(config, PRICES).items
        if i.item.startswith(("CloudWatch Logs", "Managed Prometheus: samples"))
    )


def dev_fixed_usd() -> float:
    """dev's monthly cost without its nodes (2 m4.large with 20 GiB volumes) and its logs."""
    dev = plan_stack("dev", prices=PRICES, run_program=False)
    assert dev.cost is not None and dev.config is not None
    return dev.cost.monthly_usd - 2 * node_month(0.10) - log_usd(dev.config)


def test_one_shared_pool_wins_when_the_pods_fill_few_nodes() -> None:
    # 20,000 jobs/h and 300 req/s on dev's cluster, whose nodes also run the CloudWatch agent
    # and Fluent Bit: a c5.large has 1480m left, and the system pods (the add-on's operator
    # included) request 1000m. One pool: two web pods of 1000m + the 100m proxy (180 req/s
    # each), three workers of 740m (the node split in two: 2.37 jobs/s each, 5.56 needed) and
    # the system pods, 5420m, pack onto 4 nodes; with the spare, 5. Separate pools: web 4 nodes
    # (its two 1100m pods beside the system pods), workers 3 (two -c 2 pods of 1480m and the
    # spare): 7.
    recs, _ = recommend(
        jobs_per_hour=20000,
        requests_per_second=300,
        results=RESULTS,
        catalog=SMALL_CATALOG,
        base=base_document("dev", REPO_ROOT),
        prices=PRICES,
    )
    best = recs[0]
    assert best.shared and best.web.instance_type == "c5.large" and best.web.nodes == 5
    assert [r.usd_per_month for r in recs] == sorted(r.usd_per_month for r in recs)
    assert best.usd_per_month == pytest.approx(
        dev_fixed_usd() + log_usd(best.config) + 5 * node_month(0.085), abs=0.02
    )
    split = next(r for r in recs if not r.shared)
    assert (split.web.nodes, split.worker.nodes) == (4, 3)
    assert split.usd_per_month == pytest.approx(
        dev_fixed_usd() + log_usd(split.config) + 7 * node_month(0.085), abs=0.02
    )
    config = best.config
    assert config.web.node_pool == config.worker.node_pool == "default"


def test_a_small_load_fits_three_shared_nodes() -> None:
    # 3,000 jobs/h (0.83 jobs/s) and 50 req/s on c5.large, in dev's cluster: a node has 1480m
    # after the DaemonSets (the CloudWatch agent and Fluent Bit included). Web pods carry their
    # buffering proxy (100m, 64 MiB) besides the app container. Two pods of each serve the load
    # whatever the split. The system pods request 1000m (CoreDNS 2 x 100m, metrics-server 100m,
    # load balancer controller 2 x 0m, KEDA 4 x 100m, Cluster Autoscaler 100m, the job
    # reconciler 100m, the CloudWatch add-on's operator 100m), so one pool needs two nodes and
    # the spare, 3. Of the 3-node shared choices the one with the largest margin wins: web at
    # the node over 3 (493m pods: 393m containers and the proxy), workers at the node over 4
    # (370m): 2 x 493m + 2 x 370m + 1000m = 2726m on two nodes (2960m). Separate pools need
    # 3 + 2 (web: two 740m pods beside the system pods take a node each, and the spare).
    recs, _ = recommend(
        jobs_per_hour=3000,
        requests_per_second=50,
        results=RESULTS,
        catalog=[instance_type("c5.large")],
        base=base_document("dev", REPO_ROOT),
        prices=PRICES,
    )
    best = recs[0]
    assert best.shared and best.web.nodes == 3
    assert (best.web.cpu_millicores, best.worker.cpu_millicores) == (393, 370)
    assert (best.web.replicas, best.worker.replicas) == (2, 2)
    assert best.usd_per_month == pytest.approx(
        dev_fixed_usd() + log_usd(best.config) + 3 * node_month(0.085), abs=0.02
    )
    split = next(r for r in recs if not r.shared)
    assert (split.web.nodes, split.worker.nodes) == (3, 2)
    assert split.usd_per_month == pytest.approx(
        dev_fixed_usd() + log_usd(split.config) + 5 * node_month(0.085), abs=0.02
    )
    room = room_after_daemonsets(node_allocatable("c5.large"), OBSERVED_CLUSTER_PODS.daemonsets)
    pods = [
        *OBSERVED_CLUSTER_PODS.system,
        *[web_pod(best.web.cpu_millicores, best.web.memory_mib)] * best.web.replicas,
        *[PodRequests("worker", best.worker.cpu_millicores, best.worker.memory_mib)] * best.worker.replicas,
    ]
    assert nodes_needed(room, pods) == 2
    # The Cluster Autoscaler keeps the spare: minSize is the 3 nodes, as are desired and max.
    pool = best.config.node_pools["default"]
    assert (pool.min_size, pool.desired_size, pool.max_size) == (3, 3, 3)


def test_a_two_child_worker_gets_a_queue_target_of_its_concurrency() -> None:
    # KEDA's queueLengthPerReplica must be a multiple of worker.concurrency: dev keeps 1 job
    # per process (its default 1 at -c 1), so a -c 2 worker waits for 2 jobs a pod. A base that
    # scales its workers to zero keeps doing so.
    base = base_document("dev", REPO_ROOT)
    cluster = base_cluster_pods(base)
    worker = next(
        c
        for c in worker_choices(SMALL_CATALOG, RESULTS, 20000, memory=MEMORY, disk_gib=20, prices=PRICES, cluster=cluster)
        if c.concurrency == 2
    )
    web = web_choices(SMALL_CATALOG, RESULTS, 300, memory=MEMORY, disk_gib=20, prices=PRICES, cluster=cluster)[0]
    rec = assemble(base, web, worker, 20, PRICES)
    assert not isinstance(rec, str), rec
    assert rec.config.worker.concurrency == 2
    assert rec.config.worker.autoscaling.queue_length_per_replica == 2
    assert rec.config.worker.autoscaling.min_replicas == 2
    to_zero = dict(base)
    key = "django-eks:worker"
    to_zero[key] = {**to_zero[key], "autoscaling": {**to_zero[key]["autoscaling"], "minReplicas": 0}}
    rec = assemble(to_zero, web, worker, 20, PRICES)
    assert not isinstance(rec, str), rec
    assert rec.config.worker.autoscaling.min_replicas == 0


def test_written_stack_file_validates_and_plans_clean(tmp_path: Path) -> None:
    (tmp_path / "infra").symlink_to(REPO_ROOT / "infra")
    (tmp_path / "schema").symlink_to(REPO_ROOT / "schema")
    for name in ("Pulumi.yaml", "Pulumi.dev.yaml"):
        shutil.copy(REPO_ROOT / name, tmp_path / name)
    done = subprocess.run(
        [
            sys.executable, "-m", "stack.tools.plan", "--root", str(tmp_path), "--recommend",
            "--jobs-per-hour", "20000", "--rps", "300", "--results", str(FIXTURE), "--name", "sized",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    assert "Wrote Pulumi.exp-sized.yaml; its offline plan: 0 errors" in done.stdout
    written = tmp_path / "Pulumi.exp-sized.yaml"
    text = written.read_text()
    assert "20,000 jobs/h and 300.0 req/s" in text
    assert "bench-small.json" in text
    # The stack file validates against the editor schema and the config model ...
    schema = json.loads((REPO_ROOT / "schema" / "stack-config.schema.json").read_text())
    jsonschema.validate(yaml.safe_load(text), schema)
    # It is the cheapest of the search over the x86 catalog, as printed first.
    recs, _ = recommend(
        jobs_per_hour=20000,
        requests_per_second=300,
        results=RESULTS,
        catalog=[t for t in instance_types().values() if t.architecture == "x86_64"],
        base=base_document("dev", REPO_ROOT),
        prices=PRICES,
    )
    config = config_from_stack_file("exp-sized", tmp_path)
    assert config == recs[0].config
    assert f"${recs[0].usd_per_month:,.2f}/month" in text
    # ... and the real program plans it offline without errors.
    plan = plan_stack("exp-sized", prices=PRICES, root=tmp_path)
    assert plan.offline_run and plan.errors == []


def test_recommend_needs_a_load(capsys: pytest.CaptureFixture[str]) -> None:
    assert plan_main(["--recommend", "--rps", "10", "--results", str(FIXTURE)]) == 2
    assert "--jobs-per-hour N" in capsys.readouterr().err


def test_pods_get_the_memory_the_memory_model_requires() -> None:
    # prod takes 40 M pixels: a -c 1 worker needs 128 + 112 + ceil(40e6 x 9.5 / 2^20) = 603 MiB,
    # a -c 2 worker 128 + 2 x 475 = 1078 MiB; dev's 30 M pixels 512 and 896 MiB. Web pods hold
    # their server, processes and an upload per thread whatever the pixel limit.
    for stack, one, two in (("prod", 603, 1078), ("dev", 512, 896)):
        rule = memory_rule(base_document(stack, REPO_ROOT))
        by_concurrency = {
            c.concurrency: c.memory_mib
            for c in worker_choices(SMALL_CATALOG, RESULTS, 20000, memory=rule, disk_gib=20, prices=PRICES, cluster=CLUSTER)
        }
        assert (by_concurrency[1], by_concurrency[2]) == (one, two)
    recs, _ = recommend(
        jobs_per_hour=20000,
        requests_per_second=300,
        results=RESULTS,
        catalog=SMALL_CATALOG,
        base=base_document("prod", REPO_ROOT),
        prices=PRICES,
    )
    assert recs
    for rec in recs:
        config = rec.config
        assert config.worker.memory_mib == worker_memory_needed_mib(config)
        assert config.web.memory_mib == web_memory_needed_mib(config)
        assert config.jobs.uploads_per_web_pod % config.web.gunicorn_workers == 0


def test_a_base_with_worker_deployments_gets_its_jobs_queue_sized_and_keeps_the_rest() -> None:
    # exp-queues: the jobs queue's Deployment is what the load sizes; the io Deployment (3 pods of
    # 500m at most), beat and the cron job keep their shapes and join the web pool, whose nodes
    # must now hold them too.
    base = base_document("exp-queues", REPO_ROOT)
    recs, _ = recommend(
        jobs_per_hour=20000, requests_per_second=100, results=RESULTS, catalog=SMALL_CATALOG, base=base, prices=PRICES
    )
    assert recs
    for rec in recs:
        config = rec.config
        assert "django-eks:worker" not in rec.document  # not both
        cpu, io = config.workers["cpu"], config.workers["io"]
        web_pool = config.web.node_pool
        assert (cpu.node_pool, cpu.replicas, cpu.concurrency) == (
            "default" if rec.shared else "workers", rec.worker.replicas, rec.worker.concurrency
        )
        assert (io.node_pool, io.concurrency, io.autoscaling.max_replicas) == (web_pool, 8, 3)
        assert config.beat is not None and "clearsessions" in config.cron_jobs
        assert capacity_report(config).errors == []
