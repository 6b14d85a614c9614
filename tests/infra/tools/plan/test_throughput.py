"""`make plan --results FILE`: throughput in the text, the JSON and the STACK=all comparison."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

from stack.tools.plan.report import REPO_ROOT
from tests.infra.support.benchmarks import BENCH_SMALL as FIXTURE

M4_NODE_HOUR = 0.10 + 20 * 0.08 / 730


def plan(*args: str, root: Path = REPO_ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stack.tools.plan", "--root", str(root), *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


@cache
def all_stacks_json() -> dict[str, dict[str, object]]:
    done = plan("--stack", "all", "--json", "--results", str(FIXTURE))
    assert done.returncode in (0, 1), done.stderr
    return {s["stack"]: s for s in json.loads(done.stdout)["stacks"]}


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
    # 900m (CoreDNS 2 x 100m, metrics-server 100m, load balancer controller 2 x 0m, KEDA
    # operator 2 x 100m + metrics server 100m + webhooks 100m, Cluster Autoscaler 100m, the job
    # reconciler 100m): 1650m.
    assert t["usdPer1000Jobs"] == pytest.approx(2 * M4_NODE_HOUR * 500 / 1650 / 5760 * 1000, abs=5e-5)  # JSON: 4 decimals
    # At max: web 3 x 250m + worker 2 x 500m + 900m = 2650m: more than one node's 1780m
    # (2000m - 70m kube-reserved - 150m DaemonSets), so 2 nodes, within maxSize 3.
    assert t["usdPer1000JobsAtMax"] == pytest.approx(2 * M4_NODE_HOUR * 1000 / 2650 / 11520 * 1000, abs=5e-5)
    # Scaled in (minReplicas 1 each): one worker pod still serves 5760 jobs/h.
    assert t["jobsPerHourAtMin"] == pytest.approx(5760)
    assert t["worker"]["podBound"] == "cpu request"
    assert "assumed" in t["worker"]["cpuBasis"]
    summary = dev["summary"]
    assert isinstance(summary, dict)
    assert summary["jobs_per_hour"] == pytest.approx(5760)


def test_side_by_side_compares_cost_per_job_and_request() -> None:
    done = plan("--stack", "all", "--results", str(FIXTURE))
    table = done.stdout[done.stdout.index("Stacks side by side") :]
    header = table.splitlines()[1]
    for column in ("jobs/h", "$/1000 jobs", "req/s", "$/M req"):
        assert column in header
    dev_row = next(line for line in table.splitlines() if line.startswith("dev "))
    assert "5,760" in dev_row
    assert "Throughput at full use" in done.stdout
    assert "CPU basis: m4.large: 1 vCPU = 1 benchmark CPU (assumed" in done.stdout


def test_a_bad_results_file_stops_the_plan_naming_it(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    document = json.loads(FIXTURE.read_text())
    del document["jobs"][0]["cpu_s_per_job"]
    bad.write_text(json.dumps(document))
    done = plan("--results", str(bad))
    assert done.returncode == 2
    assert "bad.json" in done.stderr and "jobs.0.cpu_s_per_job" in done.stderr


def test_without_results_the_plan_says_how_to_get_them(tmp_path: Path) -> None:
    (tmp_path / "infra").symlink_to(REPO_ROOT / "infra")
    for name in ("Pulumi.yaml", "Pulumi.dev.yaml"):
        shutil.copy(REPO_ROOT / name, tmp_path / name)
    done = plan(root=tmp_path)
    assert "Throughput: n/a: no benchmark results under" in done.stdout
    assert "make bench" in done.stdout
    # A committed results file is used without --results.
    results = tmp_path / "service" / "benchmarks" / "results"
    results.mkdir(parents=True)
    shutil.copy(FIXTURE, results / "20261101T000000Z-fixture.json")
    done = plan(root=tmp_path)
    assert "Throughput at full use" in done.stdout
    assert "20261101T000000Z-fixture.json" in done.stdout
