"""`make plan --results FILE`: throughput in the text, the JSON and the STACK=all comparison.

The figures are computed in-process from the stack files (`stack_plan`, what the command line
runs for each stack, without the program: throughput needs only the config); the command line's
own run with --results is in test_cli.py.
"""

from __future__ import annotations

import json
import shutil
from functools import cache
from pathlib import Path

import pytest

from stack.model.prices import bundled_price_book
from stack.model.throughput.options import selected_results
from stack.tools.plan.cli import main, stack_plan
from stack.tools.plan.report import REPO_ROOT, StackPlan, stack_names
from stack.tools.plan.text import render_side_by_side, render_stack
from tests.infra.support.benchmarks import BENCH_SMALL as FIXTURE

M4_NODE_HOUR = 0.10 + 20 * 0.08 / 730
PRICES = bundled_price_book()


def plan(stack: str, *, results: list[Path] | None, root: Path = REPO_ROOT) -> StackPlan:
    """The stack's plan as `make plan --results ...` computes it (no --results: the committed runs)."""
    found, note = selected_results(results, False, root / "service" / "benchmarks" / "results")
    return stack_plan(stack, prices=PRICES, results=found, results_note=note, root=root, run_program=False)


@cache
def all_stacks() -> list[StackPlan]:
    return [plan(stack, results=[FIXTURE]) for stack in stack_names()]


def all_stacks_json() -> dict[str, dict[str, object]]:
    # Through JSON text, as --json prints it.
    return {p.stack: json.loads(json.dumps(p.as_json(), default=str)) for p in all_stacks()}


def test_dev_throughput_in_json_by_hand() -> None:
    dev = all_stacks_json()["dev"]
    t = dev["throughput"]
    assert isinstance(t, dict)
    # dev: one worker pod of 500m, -c 1: 0.5 / 0.25 x 0.8 = 1.6 jobs/s; maxReplicas 2.
    assert t["jobsPerHour"] == pytest.approx(5760)
    assert t["jobsPerHourAtMax"] == pytest.approx(11520)
    # one web pod of 250m: min(200, 250 / 5) x 0.9 = 45 req/s; maxReplicas 3.
    assert t["requestsPerSecond"] == pytest.approx(45)
    assert t["requestsPerSecondAtMax"] == pytest.approx(135)
    # 2 m4.large nodes at desired size, shared by web 250m, worker 500m and the system pods
    # 1000m (CoreDNS 2 x 100m, metrics-server 100m, load balancer controller 2 x 0m, KEDA
    # operator 2 x 100m + metrics server 100m + webhooks 100m, Cluster Autoscaler 100m, the job
    # reconciler 100m, the CloudWatch add-on's operator 100m): 1750m.
    assert t["usdPer1000Jobs"] == pytest.approx(2 * M4_NODE_HOUR * 500 / 1750 / 5760 * 1000, abs=5e-5)  # JSON: 4 decimals
    # At max: web 3 x 250m + worker 2 x 500m + 1000m = 2750m on nodes of 1480m (2000m - 70m
    # kube-reserved - 450m DaemonSets, the CloudWatch agent and Fluent Bit included): packed
    # first-fit, 3 nodes, within maxSize 3.
    assert t["usdPer1000JobsAtMax"] == pytest.approx(3 * M4_NODE_HOUR * 1000 / 2750 / 11520 * 1000, abs=5e-5)
    # Scaled in (minReplicas 1 each): one worker pod still serves 5760 jobs/h.
    assert t["jobsPerHourAtMin"] == pytest.approx(5760)
    assert t["worker"]["podBound"] == "cpu request"
    assert "assumed" in t["worker"]["cpuBasis"]
    summary = dev["summary"]
    assert isinstance(summary, dict)
    assert summary["jobs_per_hour"] == pytest.approx(5760)


def test_side_by_side_compares_cost_per_job_and_request() -> None:
    plans = all_stacks()
    table = render_side_by_side(plans)
    header = table.splitlines()[1]
    for column in ("jobs/h", "$/1000 jobs", "req/s", "$/M req"):
        assert column in header
    dev_row = next(line for line in table.splitlines() if line.startswith("dev "))
    assert "5,760" in dev_row
    dev_text = render_stack(next(p for p in plans if p.stack == "dev"))
    assert "Throughput at full use" in dev_text
    assert "CPU basis: m4.large: 1 vCPU = 1 benchmark CPU (assumed" in dev_text


def test_a_bad_results_file_stops_the_plan_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    document = json.loads(FIXTURE.read_text())
    del document["jobs"][0]["cpu_s_per_job"]
    bad.write_text(json.dumps(document))
    assert main(["--results", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.json" in err and "jobs.0.cpu_s_per_job" in err


def test_without_results_the_plan_says_how_to_get_them(tmp_path: Path) -> None:
    (tmp_path / "infra").symlink_to(REPO_ROOT / "infra")
    for name in ("Pulumi.yaml", "Pulumi.dev.yaml"):
        shutil.copy(REPO_ROOT / name, tmp_path / name)
    text = render_stack(plan("dev", results=None, root=tmp_path))
    assert "Throughput: n/a: no benchmark results under" in text
    assert "make bench" in text
    # A committed results file is used without --results.
    results = tmp_path / "service" / "benchmarks" / "results"
    results.mkdir(parents=True)
    shutil.copy(FIXTURE, results / "20261101T000000Z-fixture.json")
    text = render_stack(plan("dev", results=None, root=tmp_path))
    assert "Throughput at full use" in text
    assert "20261101T000000Z-fixture.json" in text


def test_exp_queues_shows_a_row_per_worker_deployment_in_text_and_json() -> None:
    queues = next(p for p in all_stacks() if p.stack == "exp-queues")
    text = render_stack(queues)
    rows = [line for line in text.splitlines() if line.startswith("worker-")]
    assert [row.split("  ")[0] for row in rows] == ["worker-cpu [jobs]", "worker-io [io, notifications]"]
    data = json.loads(json.dumps(queues.as_json(), default=str))
    workers = data["throughput"]["workers"]
    assert list(workers) == ["worker-cpu", "worker-io"]
    # The jobs queue on c5.large, 1000m, -c 1: 1 vCPU / 0.25 s x 0.8 = 3.2 jobs/s a pod, 2 pods.
    assert workers["worker-cpu"]["queues"] == ["jobs"]
    assert workers["worker-cpu"]["tasksPerHour"] == pytest.approx(2 * 3.2 * 3600)
    assert workers["worker-cpu"]["usdPer1000Tasks"] > 0
    assert workers["worker-io"]["tasksPerHour"] is None
    pools = {p["pool"]: p for p in data["capacity"]["pools"]}
    assert pools["compute"]["replicas"] == {"worker-cpu": 2}
    assert pools["general"]["replicas"] == {"web": 2, "worker-io": 1, "beat": 1, "cron-clearsessions": 1}


def test_an_apps_stack_gets_no_throughput_from_the_demos_benchmark() -> None:
    example = next(p for p in all_stacks() if p.stack == "exp-example")
    assert example.throughput is None
    assert "demo service" in example.throughput_note
    assert "Throughput: n/a: the benchmark results measure the demo service" in render_stack(example)
    # The same results do give the demo's stacks their figures.
    assert next(p for p in all_stacks() if p.stack == "dev").throughput is not None
