"""`make measure` end to end: the demo service's real web and worker processes, a real Prometheus
(Debian's server) scraping their `/metrics` every second, a short load of jobs and requests, then
`make measure` over the window, the plan with the file it wrote, and the recommender with it.

What the test checks against its own account of the load: the file validates against the
schema; its task and request counts are those the test made; its CPU per task is the CPU the
worker's pool process used for those tasks, read from /proc, within the part of that process's
CPU that is Celery's own handling of each message (the task's thread CPU is a part of its
process's CPU; the rest is the child reading the message and reporting the result).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
import yaml
from benchmarks.pods import process_cpu_seconds
from conftest import encode, photo_like
from service_processes import free_port, wait_for
from test_processes import wait_all_done

from stack.model.throughput.measured import load_measured, schema_problems
from stack.model.throughput.pods import task_cpu_seconds
from stack.model.throughput.options import selected_results
from stack.tools.measure.cli import main as measure_main
from stack.tools.plan.cli import main as plan_main
from stack.tools.plan.report import REPO_ROOT, config_from_stack_file
from tests.infra.support.prometheus import prometheus_server

JOBS = 4


def _children(pid: int) -> list[int]:
    """The live child processes of `pid` (the worker's pool processes)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def _iso(t: datetime) -> str:
    return t.isoformat()


def test_measure_the_running_service_then_plan_and_recommend_with_it(processes, tmp_path, capsys):
    dev = config_from_stack_file("dev")
    # The web shape of the dev stack (the measured file names the stack's shape): granian 1 x 8.
    probe_port, metrics_port = free_port(), free_port()
    _, url = processes.web(
        dev.web.server, threads=dev.web.threads, processes=dev.web.gunicorn_workers,
        env={"PROBE_BIND": f"127.0.0.1:{probe_port}"},
    )
    worker = processes.worker(env={"METRICS_BIND": f"127.0.0.1:{metrics_port}", "WORKER_CONCURRENCY": "1"})
    wait_for(lambda: _children(worker.pid), timeout=30, what="the worker's pool process")
    (pool,) = _children(worker.pid)
    image = encode(photo_like(1600, 1200))

    with prometheus_server(tmp_path / "prometheus", [f"127.0.0.1:{probe_port}", f"127.0.0.1:{metrics_port}"]) as prom:
        prom.wait_up(2)
        prom.wait_scraped(1)
        start = datetime.now(UTC)
        pool_cpu_before = process_cpu_seconds(pool)
        made = 0
        job_ids = []
        for _ in range(JOBS):
            response = requests.post(f"{url}/api/jobs", files={"image": ("photo.png", image, "image/png")}, timeout=30)
            made += 1
            assert response.status_code == 201, response.text
            job_ids.append(response.json()["id"])
        wait_all_done(job_ids, timeout=120)
        for job_id in job_ids * 2:
            assert requests.get(f"{url}/api/jobs/{job_id}", timeout=10).status_code == 200
            made += 1
        assert requests.get(f"{url}/api/no-such-thing", timeout=10).status_code == 404
        made += 1
        # The results of the tasks are in; the pool process is idle again.
        pool_cpu = process_cpu_seconds(pool) - pool_cpu_before
        assert _children(worker.pid) == [pool]  # the same pool process ran every task
        prom.wait_scraped(3)
        end = datetime.now(UTC)

        out = tmp_path / "dev-measured.json"
        code = measure_main(
            ["--stack", "dev", "--prometheus-url", prom.url, "--since", _iso(start), "--until", _iso(end), "--out", str(out)]
        )
        printed = capsys.readouterr()
        assert code == 0, printed.err

    document = json.loads(out.read_text())
    assert schema_problems(document) == []
    measured = load_measured(out)
    jobs = measured.queue("jobs")
    assert jobs is not None and measured.web is not None
    assert (jobs.tasks, jobs.tasks_by_outcome) == (JOBS, {"succeeded": JOBS})
    assert measured.web.requests == made
    assert measured.web.requests_by_route == {"api/jobs": JOBS, "api/jobs/<str:job_id>": 2 * JOBS, "<unmatched>": 1}
    # The tasks' thread CPU is part of the pool process's CPU over the load, and most of it.
    task_cpu = jobs.cpu_seconds
    assert task_cpu <= pool_cpu + 0.02, (task_cpu, pool_cpu)
    assert task_cpu >= 0.75 * pool_cpu, (task_cpu, pool_cpu)
    assert jobs.cpu_seconds_per_task == pytest.approx(task_cpu / JOBS, rel=1e-3)
    assert measured.web.cpu_seconds_per_request is not None and measured.web.cpu_seconds_per_request > 0
    # Each request's own thread CPU, by route, is a part of the web process's CPU.
    by_route = measured.web.thread_cpu_seconds_per_request_by_route
    assert set(by_route) == set(measured.web.requests_by_route)
    threads_cpu = sum(by_route[r] * n for r, n in measured.web.requests_by_route.items())
    assert 0 < threads_cpu <= measured.web.cpu_seconds
    assert [p.pods for p in measured.pods_per_node] == [{"web": 1, "worker": 1}]

    # The plan prints the measured CPU per task beside the benchmark's, with the ratio.
    results, _ = selected_results(None, False)
    assert results is not None
    loaded, _ = results.for_instance_type(dev.node_pools[dev.worker.node_pool].instance_type)
    estimated = task_cpu_seconds(loaded.results, dev.worker.concurrency)
    assert estimated is not None
    assert plan_main(["--stack", "dev", "--measured", str(out)]) == 0
    text = capsys.readouterr().out
    rows = [" ".join(line.split()) for line in text[text.index("Measured vs estimated") :].splitlines()]
    ratio = jobs.cpu_seconds_per_task / estimated
    assert f"worker [jobs] CPU s per task {estimated:.4g} s {jobs.cpu_seconds_per_task:.4g} s {ratio:.2f}" in rows
    assert any(r.startswith("web CPU ms per request ") for r in rows)
    with capsys.disabled():  # the figures, for whoever runs the test with -s
        print(
            f"\nmeasured CPU per task {jobs.cpu_seconds_per_task:.4f} s (pool process {pool_cpu / JOBS:.4f} s per "
            f"task), benchmark estimate {estimated:.4f} s ({loaded.label}), ratio {ratio:.2f}; CPU per request "
            f"{measured.web.cpu_seconds_per_request * 1000:.2f} ms over {made} requests"
        )

    # The recommender with the stack's measured CPU per task. The real file, its CPU per task
    # scaled to 8x the benchmark's (a much heavier image mix than this test's, say): for 20,000
    # jobs/h and 100 req/s the benchmark's figure is served by four shared c5.large nodes; 8x the
    # CPU per job needs 8x the worker vCPUs, and then larger nodes are cheaper (with the bundled
    # prices: five shared c5.xlarge $890.05 a month, ten c5.large $945.94): every node carries
    # the DaemonSets (the CloudWatch agent among them), and the spare node is a smaller share.
    scaled = dict(document)
    factor = 8 * estimated / jobs.cpu_seconds_per_task
    scaled["queues"] = [
        {**q, "cpu_seconds": q["cpu_seconds"] * factor, "cpu_seconds_per_task": q["cpu_seconds_per_task"] * factor}
        for q in document["queues"]
    ]
    heavy = tmp_path / "dev-measured-heavy.json"
    heavy.write_text(json.dumps(scaled))
    assert schema_problems(scaled) == []

    root = tmp_path / "root"
    root.mkdir()
    (root / "infra").symlink_to(REPO_ROOT / "infra")
    (root / "schema").symlink_to(REPO_ROOT / "schema")
    (root / "service").symlink_to(REPO_ROOT / "service")
    for name in ("Pulumi.yaml", "Pulumi.dev.yaml"):
        (root / name).write_text((REPO_ROOT / name).read_text())

    def recommended(name: str, *measured_args: str) -> tuple[set[str], str]:
        args = ["--root", str(root), "--recommend", "--jobs-per-hour", "20000", "--rps", "100", "--name", name]
        assert plan_main([*args, *measured_args]) == 0
        printed = capsys.readouterr().out
        config = yaml.safe_load((root / f"Pulumi.exp-{name}.yaml").read_text())["config"]
        return {p["instanceType"] for p in config["django-eks:nodePools"].values()}, printed

    benchmark_types, _ = recommended("benchmark")
    heavy_types, heavy_text = recommended("heavy", "--measured", str(heavy))
    assert heavy_types != benchmark_types, (benchmark_types, heavy_types)
    assert f"CPU per task {8 * estimated:.4g} s measured on {dev.node_pools[dev.worker.node_pool].instance_type}" in heavy_text
