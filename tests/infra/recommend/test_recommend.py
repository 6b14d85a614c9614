"""The recommender against a small catalog where the answer is known by hand.

Fixture figures (tests/infra/throughput/fixtures/bench-small.json): worker `-c 1` 0.25 CPU
s/job at ratio 0.8 (3.2 jobs/s per vCPU), `-c 2` ratio 0.6; gunicorn gthread 1x8 db requests:
threads limit 200 req/s, 5 CPU ms each, ratio 0.9.

A c5.large node has 1780m CPU left after DaemonSets (1930m allocatable - 150m); an m5.large
the same CPU for $0.096/h instead of $0.085; an m5.xlarge 3770m for $0.192/h. A node-month is
730 h x price + 20 GiB x $0.08 of gp3.
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

from stack.capacity import SYSTEM_PODS, PodRequests, node_allocatable, nodes_needed, room_after_daemonsets
from stack.catalog import instance_type
from stack.plan.report import REPO_ROOT, config_from_stack_file, plan_stack
from stack.prices import bundled_price_book
from stack.recommend.cli import recommend
from stack.recommend.search import web_choices, worker_choices
from stack.recommend.stack_file import base_document
from stack.throughput.estimate import ResultsSet
from stack.throughput.results import load_results

FIXTURE = REPO_ROOT / "tests" / "infra" / "throughput" / "fixtures" / "bench-small.json"
RESULTS = ResultsSet((load_results(FIXTURE),))
PRICES = bundled_price_book()
SMALL_CATALOG = [instance_type(n) for n in ("m5.large", "c5.large", "m5.xlarge")]


def node_month(price: float) -> float:
    return price * 730 + 20 * 0.08


def test_workers_for_20000_jobs_an_hour() -> None:
    # 5.56 jobs/s. On c5.large, two pods of 890m (the node split in two) serve 2 x 0.89 x 3.2
    # = 5.70 jobs/s and fit on one node; with the spare node: 2 nodes. Whole-core pods would
    # need 3 nodes, -c 2 pods as many; m5.large is the same shape at a higher price and
    # m5.xlarge costs twice a c5.large per node with the same 2-node minimum.
    best = worker_choices(SMALL_CATALOG, RESULTS, 20000, memory_mib=512, disk_gib=20, prices=PRICES)[0]
    assert (best.instance_type, best.concurrency, best.cpu_millicores) == ("c5.large", 1, 890)
    assert (best.replicas, best.nodes) == (2, 2)
    assert best.usd_per_month == pytest.approx(2 * node_month(0.085))
    assert best.served_per_second * 3600 == pytest.approx(2 * 0.89 * 3.2 * 3600)


def test_without_the_cheapest_type_the_next_is_chosen() -> None:
    catalog = [t for t in SMALL_CATALOG if t.name != "c5.large"]
    best = worker_choices(catalog, RESULTS, 20000, memory_mib=512, disk_gib=20, prices=PRICES)[0]
    assert (best.instance_type, best.nodes, best.cpu_millicores) == ("m5.large", 2, 890)
    assert best.usd_per_month == pytest.approx(2 * node_month(0.096))


def test_workers_for_40000_jobs_an_hour() -> None:
    # 11.1 jobs/s: c5.large, 4 pods of 890m (11.39 jobs/s) on 2 nodes + 1 spare: $190.95;
    # m5.xlarge, 4 pods of 942m (4 per node, 12.06 jobs/s) on 1 node + 1 spare: $283.52.
    best = worker_choices(SMALL_CATALOG, RESULTS, 40000, memory_mib=512, disk_gib=20, prices=PRICES)[0]
    assert (best.instance_type, best.nodes, best.replicas) == ("c5.large", 3, 4)
    assert best.usd_per_month == pytest.approx(3 * node_month(0.085))


def test_web_for_300_requests_a_second() -> None:
    # 1000m pods serve min(200, 1000/5) x 0.9 = 180 req/s: 2 pods; with the system pods they
    # need 2 c5.large nodes, plus the spare: 3. Smaller splits also need 3 nodes and serve less.
    best = web_choices(SMALL_CATALOG, RESULTS, 300, memory_mib=384, disk_gib=20, prices=PRICES)[0]
    assert (best.instance_type, best.cpu_millicores, best.replicas, best.nodes) == ("c5.large", 1000, 2, 3)
    assert best.served_per_second == pytest.approx(360)
    assert best.margin == pytest.approx(0.2)


@pytest.mark.parametrize("jobs_per_hour", [0, 5000, 60000])
def test_every_choice_survives_a_node_loss(jobs_per_hour: float) -> None:
    for choice in worker_choices(SMALL_CATALOG, RESULTS, jobs_per_hour, memory_mib=512, disk_gib=20, prices=PRICES):
        room = room_after_daemonsets(node_allocatable(choice.instance_type))
        pods = [PodRequests("worker", choice.cpu_millicores, 512)] * choice.replicas
        assert nodes_needed(room, pods) <= choice.nodes - 1
        assert choice.nodes >= 2 and choice.replicas >= 2
        assert choice.served_per_second * 3600 >= jobs_per_hour
    for web in web_choices(SMALL_CATALOG, RESULTS, 500, memory_mib=384, disk_gib=20, prices=PRICES):
        room = room_after_daemonsets(node_allocatable(web.instance_type))
        pods = [*SYSTEM_PODS, *[PodRequests("web", web.cpu_millicores, 384)] * web.replicas]
        assert nodes_needed(room, pods) <= web.nodes - 1


def test_recommendations_are_whole_stacks_cheapest_first() -> None:
    recs, _ = recommend(
        jobs_per_hour=20000,
        requests_per_second=300,
        results=RESULTS,
        catalog=SMALL_CATALOG,
        base=base_document("dev", REPO_ROOT),
        prices=PRICES,
    )
    best = recs[0]
    assert (best.web.instance_type, best.worker.instance_type) == ("c5.large", "c5.large")
    assert [r.usd_per_month for r in recs] == sorted(r.usd_per_month for r in recs)
    # The whole stack: dev's fixed costs plus 3 + 2 c5.large nodes.
    dev = plan_stack("dev", prices=PRICES, run_program=False)
    assert dev.cost is not None
    dev_nodes = 2 * node_month(0.10)  # dev: 2 m4.large with 20 GiB volumes
    assert best.usd_per_month == pytest.approx(dev.cost.monthly_usd - dev_nodes + 5 * node_month(0.085), abs=0.01)


def test_written_stack_file_validates_and_plans_clean(tmp_path: Path) -> None:
    (tmp_path / "infra").symlink_to(REPO_ROOT / "infra")
    (tmp_path / "schema").symlink_to(REPO_ROOT / "schema")
    for name in ("Pulumi.yaml", "Pulumi.dev.yaml"):
        shutil.copy(REPO_ROOT / name, tmp_path / name)
    done = subprocess.run(
        [
            sys.executable, "-m", "stack.plan", "--root", str(tmp_path), "--recommend",
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
    config = config_from_stack_file("exp-sized", tmp_path)
    assert config.node_pools["workers"].instance_type == "c5.large"
    assert config.worker.replicas == 2 and config.worker.cpu_millicores == 890
    # ... and the real program plans it offline without errors.
    plan = plan_stack("exp-sized", prices=PRICES, root=tmp_path)
    assert plan.offline_run and plan.errors == []


def test_recommend_needs_a_load(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "stack.plan", "--recommend", "--rps", "10", "--results", str(FIXTURE)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "--jobs-per-hour N" in done.stderr
