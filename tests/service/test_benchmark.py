"""`python -m benchmarks`: the fast run's results file, table and chart; `load` against a local service.

Structure and sanity only: the figures themselves are the benchmark's output, not test assertions.
"""

import json
import os
import subprocess
import sys
import time
from typing import Literal

import pytest
import requests
from conftest import TEST_REDIS_URL, encode, photo_like
from pydantic import BaseModel, ConfigDict, Field
from service_processes import SERVICE_DIR, wait_for

from config.launch import SERVERS

# One after another in one xdist worker: the fast run pins its pods to CPUs and measures them.
pytestmark = pytest.mark.xdist_group("benchmark")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Machine(Strict):
    hostname: str
    cpu_model: str
    cores: int = Field(ge=1)
    memory_mib: int = Field(gt=0)
    instance_type: str | None
    loadavg_at_start: list[float] = Field(min_length=3, max_length=3)


class Run(Strict):
    started_at: str = Field(pattern=r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
    duration_s: float = Field(gt=0)
    mode: Literal["fast", "full"]
    machine: Machine
    versions: dict[str, str | None]


class Percentiles(Strict):
    p50: float = Field(ge=0)
    p95: float | None = None
    p99: float | None = None


class JobRow(Strict):
    shape: str
    pods: int = Field(ge=1)
    concurrency: int = Field(ge=1)
    cpus_per_pod: float = Field(gt=0)
    jobs: int = Field(ge=1)
    jobs_per_s: float = Field(gt=0)
    cpu_s_per_job: float = Field(gt=0)
    limit_jobs_per_s: float = Field(gt=0)
    ratio: float = Field(gt=0)
    limit_path_jobs_per_s: float = Field(gt=0)
    ratio_path: float = Field(gt=0)
    cpu_efficiency: float = Field(gt=0)
    submit_to_done_ms: Percentiles
    time_per_job_ms: dict[str, float]


class HttpRow(Strict):
    shape: str
    server: Literal["gunicorn", "uwsgi", "granian"]
    worker_class: str
    processes: int = Field(ge=1)
    threads: int = Field(ge=1)
    cpus: float = Field(gt=0)
    workload: Literal["io", "db"]
    concurrency: int = Field(ge=1)
    requests: int = Field(ge=1)
    rps: float = Field(gt=0)
    latency_ms: Percentiles
    errors: int = Field(ge=0)
    cpu_ms_per_request: float = Field(ge=0)
    limit_rps_threads: float = Field(gt=0)
    limit_rps_cpu: float = Field(gt=0)
    ratio: float = Field(gt=0)
    bound: Literal["threads", "cpu"]


class Results(Strict):
    schema_: Literal["django-eks-bench/2"] = Field(alias="schema")
    run: Run
    jobs: list[JobRow] = Field(min_length=1)
    http: list[HttpRow] = Field(min_length=1)


def bench_env(database: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "CELERY_", "GUNICORN_"))}
    base = os.environ["DATABASE_URL"].rsplit("/", 1)[0]
    return {**env, "DATABASE_URL": f"{base}/{database}", "REDIS_URL": TEST_REDIS_URL,
            "BENCH_INSTANCE_TYPE": "m5.large"}


@pytest.fixture
def bench_database(test_redis):
    from django.conf import settings

    name = f"{settings.DATABASES['default']['NAME']}_bench"
    yield name
    import psycopg

    base = os.environ["DATABASE_URL"].rsplit("/", 1)[0]
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_fast_run_writes_results_table_and_chart(bench_database, tmp_path):
    out = tmp_path / "run.json"
    result = subprocess.run([sys.executable, "-m", "benchmarks", "run", "--fast", "--out", str(out)],
                            cwd=SERVICE_DIR, env=bench_env(bench_database), capture_output=True, text=True,
                            timeout=240)
    assert result.returncode == 0, result.stderr[-4000:]
    results = Results.model_validate_json(out.read_text())
    assert results.run.mode == "fast"
    assert results.run.machine.instance_type == "m5.large"
    assert results.run.versions["gunicorn"] and results.run.versions["uwsgi"]
    assert results.run.versions["granian"] and results.run.versions["postgresql"]

    (job,) = results.jobs
    assert (job.shape, job.pods, job.concurrency) == ("1 pod x -c 1", 1, 1)
    # Each figure is given against its limit, computed from what the same run measured.
    assert job.limit_jobs_per_s == pytest.approx(job.pods * job.cpus_per_pod / job.cpu_s_per_job, rel=0.01)
    assert job.ratio == pytest.approx(job.jobs_per_s / job.limit_jobs_per_s, rel=0.02)
    assert job.submit_to_done_ms.p95 is not None and job.submit_to_done_ms.p95 >= job.submit_to_done_ms.p50
    assert {"pillow", "worker", "web", "database"} <= set(job.time_per_job_ms)
    # The worker pod's CPU per job includes the compression itself.
    assert job.time_per_job_ms["worker"] >= job.time_per_job_ms["pillow"] * 0.8
    assert job.cpu_efficiency == pytest.approx(job.time_per_job_ms["pillow"] / job.time_per_job_ms["worker"], rel=0.02)
    # The whole path: every process a job took CPU in, on all the machine's cores.
    spent = sum(job.time_per_job_ms.get(part, 0.0) for part in ("worker", "web", "database", "broker", "load_generator"))
    assert spent > job.time_per_job_ms["worker"]
    assert job.limit_path_jobs_per_s == pytest.approx(results.run.machine.cores * 1000 / spent, rel=0.02)
    assert job.ratio_path == pytest.approx(job.jobs_per_s / job.limit_path_jobs_per_s, rel=0.02)

    assert {(row.server, row.workload) for row in results.http} == {(s, w) for s in SERVERS for w in ("io", "db")}
    for row in results.http:
        assert row.errors == 0, row
        assert row.ratio == pytest.approx(row.rps / min(row.limit_rps_threads, row.limit_rps_cpu), rel=0.02)
        if row.workload == "io":
            # 50 ms per request: no slot can answer more than 20 per second.
            assert row.limit_rps_threads == pytest.approx(row.processes * row.threads / 0.05)
            assert row.rps <= row.limit_rps_threads * 1.05
            assert row.latency_ms.p50 >= 50

    table = out.with_suffix(".md").read_text()
    assert "| 1 pod x -c 1 |" in table and "| uwsgi http-router 1x4 | db |" in table
    assert out.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "jobs/s" in result.stderr and "req/s" in result.stderr


def test_bad_shapes_file_is_named(tmp_path):
    shapes = tmp_path / "shapes.json"
    shapes.write_text('{"jobs": {"burst": 1, "shapes": []}}')
    result = subprocess.run([sys.executable, "-m", "benchmarks", "run", "--shapes", str(shapes), "--out", "-"],
                            cwd=SERVICE_DIR, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert f"the shapes file {shapes} has no 'http' section" in result.stderr


def test_servers_compares_each_server_alone_and_behind_the_sidecar(bench_database, tmp_path):
    """One short round of one server: CPU per request, the I/O path, memory, slow clients."""
    out = tmp_path / "servers.json"
    result = subprocess.run([sys.executable, "-m", "benchmarks", "servers", "--rounds", "1", "--duration", "0.5",
                             "--servers", "granian", "--out", str(out)],
                            cwd=SERVICE_DIR, env=bench_env(bench_database), capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-4000:]
    results = json.loads(out.read_text())
    assert results["schema"] == "django-eks-bench-servers/1"
    assert len(results["run"]["loadavg_at_end"]) == 3 and results["run"]["server_cpus"]
    (row,) = results["rounds"]
    assert row["server"] == "granian" and row["round"] == 1
    # The sidecar's own CPU is part of its configuration's total.
    assert 0 < row["nginx_own_db_cpu_ms"] < row["nginx_db_cpu_ms"]
    assert 0 < row["healthz_cpu_ms"] and 0 < row["db_cpu_ms"]
    assert row["io16"]["rps"] > 0 and row["io64"]["p99_ms"] >= 50  # /api/io?ms=50
    assert row["pss_mib"] > row["nginx_pss_mib"] > 0
    # The probe port answers whatever the request threads do; nginx holds 12 slow bodies and
    # lets the other client's requests through.
    for key in ("slow", "nginx_slow"):
        assert set(row[key]) == {"12", "64"}
        assert all(row[key][n]["probe"]["status"] == 200 for n in ("12", "64")), row[key]
    assert row["nginx_slow"]["12"]["held"] == 12
    assert row["nginx_slow"]["12"]["healthz"]["status"] == row["nginx_slow"]["12"]["db"]["status"] == 200
    table = out.with_suffix(".md").read_text()
    assert "| granian |" in table and "| granian | nginx sidecar | 64 |" in table and "median" in table


def test_servers_refuses_an_unknown_server():
    result = subprocess.run([sys.executable, "-m", "benchmarks", "servers", "--servers", "granian,waitress"],
                            cwd=SERVICE_DIR, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "waitress" in result.stderr and "granian, gunicorn, uwsgi" in result.stderr


def one_job_seconds(url: str, *, until_done: bool) -> float:
    """How long one small job takes through this service now: its upload and first status
    answer, and with ``until_done`` its compression too. The load runs last a multiple of it, so
    that on a machine busy with other work they still see a job (or a request) through."""
    started = time.monotonic()
    response = requests.post(f"{url}/api/jobs", files={"image": ("p.png", encode(photo_like(320, 240)), "image/png")},
                             timeout=60)
    assert response.status_code == 201, response.text
    job_id = response.json()["id"]

    def status() -> str | None:
        body = requests.get(f"{url}/api/jobs/{job_id}", timeout=60).json()
        return body["status"] if not until_done or body["status"] in {"done", "failed"} else None

    wait_for(status, timeout=120, interval=0.1, what="the baseline job")
    return time.monotonic() - started


def load_seconds(baseline_s: float) -> int:
    """6 s on an idle machine (a job takes under a second), longer when the baseline job was slow."""
    return max(6, round(4 * baseline_s))


def test_load_drives_jobs_and_http_against_a_running_service_within_its_rate(processes):
    _, url = processes.web(SERVERS[0], env={"API_IO_ENABLED": "true"})  # the default server; /api/io is off by default
    processes.worker()
    duration = load_seconds(one_job_seconds(url, until_done=True))
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks", "load", "--url", url, "--duration", str(duration), "--rate", "5",
         "--users", "1"],
        cwd=SERVICE_DIR, capture_output=True, text=True, timeout=duration + 180)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    rows = {}
    for line in result.stdout.splitlines()[1:]:
        label, count, errors, rps, _p50, _p99 = line.rsplit(None, 5)
        rows[label] = (int(count), int(errors), float(rps))
    assert "JOB submit-to-done" in rows, result.stdout
    assert rows["JOB submit-to-done"][0] >= 1, result.stdout  # a job went through web, Redis and the worker
    assert rows["GET /api/io"][0] >= 1 and rows["GET /api/jobs/<id>"][0] >= 1
    assert all(errors == 0 for _, errors, _ in rows.values()), result.stdout
    # The cap: 5 requests (or jobs) per second over all users, whatever the service could take.
    capped = rows["GET /api/io"][0] + rows["GET /api/jobs/<id>"][0]
    assert capped <= 5 * duration + 3, result.stdout


def test_load_skips_the_io_workload_with_a_reason_when_the_service_does_not_serve_it(processes):
    _, url = processes.gunicorn()  # API_IO_ENABLED unset, as in a deployed stack
    duration = load_seconds(one_job_seconds(url, until_done=False))
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks", "load", "--url", url, "--duration", str(duration), "--rate", "4",
         "--users", "1", "--workloads", "io,db"],
        cwd=SERVICE_DIR, capture_output=True, text=True, timeout=duration + 180)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert "skipping the io workload" in result.stderr and "API_IO_ENABLED=true" in result.stderr
    labels = [line.rsplit(None, 5)[0] for line in result.stdout.splitlines()[1:]]
    assert "GET /api/jobs/<id>" in labels and "GET /api/io" not in labels, result.stdout

    only_io = subprocess.run(
        [sys.executable, "-m", "benchmarks", "load", "--url", url, "--duration", "2", "--workloads", "io"],
        cwd=SERVICE_DIR, capture_output=True, text=True, timeout=60)
    assert only_io.returncode != 0
    assert f"{url}/api/io answers 404" in only_io.stderr and "nothing left to run" in only_io.stderr


def test_load_refuses_a_url_that_is_not_one():
    result = subprocess.run([sys.executable, "-m", "benchmarks", "load", "--url", "app.example.com"],
                            cwd=SERVICE_DIR, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "--url must be an http(s) URL" in result.stderr
