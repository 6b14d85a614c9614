"""`make plan ARGS="--measured PATH"`: the stack's measured figures beside the estimates, and the
recommender sized by the measured CPU per task.

Fixture figures (tests/infra/support/fixtures/bench-small.json): worker `-c 1` 0.25 CPU s/job at
ratio 0.8; granian 1x8 db requests: threads limit 200 req/s, 5 CPU ms each, ratio 0.9. dev runs a
`-c 1` worker requesting 500m and a granian 1x8 web pod requesting 250m on m4.large (1 vCPU = 1
benchmark CPU), so one worker pod serves 0.5 / 0.25 x 0.8 = 1.6 jobs/s (5,760 jobs/h) and one web
pod min(200, 0.25 x 1000 / 5) x 0.9 = 45 req/s.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stack.config.catalog import instance_types
from stack.model.prices import bundled_price_book
from stack.model.throughput.compare import with_measured_task_cpu
from stack.model.throughput.estimate import ResultsSet
from stack.model.throughput.measured import load_measured
from stack.model.throughput.results import load_results
from stack.tools.plan.cli import main
from stack.tools.plan.report import REPO_ROOT
from stack.tools.recommend.cli import recommend
from stack.tools.recommend.stack_file import base_document
from tests.infra.support.benchmarks import BENCH_SMALL as FIXTURE
from tests.infra.support.measured import measured_document, write_measured


def _plan(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    code = main(["--stack", "dev", "--results", str(FIXTURE), *args])
    out = capsys.readouterr()
    assert code == 0, out.err
    return out.out


def test_the_plan_prints_measured_beside_estimated_with_the_ratio(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The stack's tasks took twice the benchmark's CPU, its requests 10 ms instead of 5.
    path = write_measured(tmp_path / "dev.json", measured_document("dev", task_cpu_s=0.5, request_cpu_s=0.010))
    text = _plan(capsys, "--measured", str(path))
    section = text[text.index("Measured vs estimated") :]
    rows = [" ".join(line.split()) for line in section.splitlines()]
    assert "worker [jobs] CPU s per task 0.25 s 0.5 s 2.00" in rows
    # Half the jobs per pod: 0.5 vCPU / 0.5 s x 0.8 = 0.8 jobs/s.
    assert "worker [jobs] jobs/h per pod 5,760 2,880 0.50" in rows
    assert "web CPU ms per request 5 ms 10 ms 2.00" in rows
    # min(200, 0.25 x 1000 / 10) x 0.9 = 22.5 req/s.
    assert "web req/s per pod 45.0 22.5 0.50" in rows
    assert "queue jobs: 10 tasks in the window (10.0/h; succeeded 10), run time 0.55 s mean" in section
    assert "web: each route's own thread CPU per request: api/jobs/<uuid:job_id> 8 ms" in section
    assert f"from {path}: stack dev, 2026-12-02T13:00:00Z .. 2026-12-02T14:00:00Z" in section
    # Without --measured there is no such section.
    assert "Measured vs estimated" not in _plan(capsys)

    document = json.loads(_plan(capsys, "--measured", str(path), "--json"))
    measured = document["stacks"][0]["measured"]
    assert measured["stack"] == "dev" and measured["instanceTypes"] == {"web": "m4.large", "worker": "m4.large"}
    figures = {(f["workload"], f["figure"]): (f["estimated"], f["measured"], f["ratio"]) for f in measured["figures"]}
    assert figures == {
        ("worker [jobs]", "CPU s per task"): (0.25, 0.5, 2.0),
        ("worker [jobs]", "jobs/h per pod"): (5760.0, 2880.0, 0.5),
        ("web", "CPU ms per request"): (5.0, 10.0, 2.0),
        ("web", "req/s per pod"): (45.0, 22.5, 0.5),
    }


def test_another_stacks_file_is_compared_and_said_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_measured(tmp_path / "prod.json", measured_document("prod", task_cpu_s=0.25, request_cpu_s=None))
    section = _plan(capsys, "--measured", str(path)).split("Measured vs estimated", 1)[1]
    assert "measured on stack prod, compared with the estimates of dev" in section
    assert "web: no requests in the measured window" in section


def test_a_bad_measured_file_is_refused_naming_the_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    document = measured_document("dev", task_cpu_s=0.5, request_cpu_s=None)
    document["queues"][0]["cpu_seconds_per_task"] = -1
    path = write_measured(tmp_path / "bad.json", document)
    assert main(["--stack", "dev", "--results", str(FIXTURE), "--measured", str(path)]) == 2
    err = capsys.readouterr().err
    assert "queues.0.cpu_seconds_per_task: -1 is less than the minimum of 0" in err
    assert main(["--stack", "dev", "--measured", str(tmp_path / "missing.json")]) == 2
    assert "missing.json: cannot be read" in capsys.readouterr().err


def test_the_recommender_needs_the_jobs_queue_measured(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_measured(tmp_path / "web-only.json", measured_document("dev", task_cpu_s=None, request_cpu_s=0.01))
    code = main(["--recommend", "--jobs-per-hour", "1000", "--rps", "10", "--results", str(FIXTURE), "--measured", str(path)])
    assert code == 2
    assert "no CPU per task of the 'jobs' queue" in capsys.readouterr().err


def test_a_higher_measured_cpu_per_task_moves_the_recommendation(tmp_path: Path) -> None:
    """At 40,000 jobs/h the benchmark's 0.25 CPU s per job is served by a few c5.large nodes. The
    stack measured 1.5 s per job (6x): the same pods serve a sixth of the load, so that choice no
    longer serves it, and the cheapest one that does is of another instance type."""
    path = write_measured(tmp_path / "dev.json", measured_document("dev", task_cpu_s=1.5, request_cpu_s=None))
    benchmark = ResultsSet((load_results(FIXTURE),))
    measured = with_measured_task_cpu(benchmark, load_measured(path), "dev.json")
    catalog = [t for t in instance_types().values() if t.architecture == "x86_64"]

    def best(results: ResultsSet) -> tuple[str, int, float]:
        recs, _ = recommend(
            jobs_per_hour=40000, requests_per_second=50, results=results, catalog=catalog,
            base=base_document("dev", REPO_ROOT), prices=bundled_price_book(),
        )
        r = recs[0]
        return r.worker.instance_type, r.worker.replicas, r.worker.per_pod.per_second

    (type_before, pods_before, rate_before), (type_after, pods_after, rate_after) = best(benchmark), best(measured)
    assert type_after != type_before
    # Each choice serves the load by its own figures; the first serves a sixth as many jobs once
    # they take 1.5 s each: short of 40,000 jobs/h.
    assert pods_before * rate_before * 3600 >= 40000 and pods_after * rate_after * 3600 >= 40000
    assert pods_before * rate_before / 6 * 3600 < 40000
