"""python -m benchmarks run | load: see benchmarks/__init__.py."""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
JOB_STOP_TIMEOUT_SECONDS = 60


def _shapes(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise SystemExit(f"bench: cannot read the shapes file {path}: {exc}") from exc
    for key in ("jobs", "http"):
        if key not in data:
            raise SystemExit(f"bench: the shapes file {path} has no '{key}' section")
    return data


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _django() -> Any:
    """The benchmark's backends, with Django set up on them (its own pods: see service_env)."""
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.local"
    from benchmarks.environment import Backends, database_ensure

    backends = Backends.from_environment()
    os.environ["DATABASE_URL"], os.environ["REDIS_URL"] = backends.database_url, backends.redis_url
    import django

    django.setup()
    database_ensure(backends)
    return backends


def servers(args: argparse.Namespace) -> int:
    from benchmarks import servers

    return servers.run(args, _django())


def run(args: argparse.Namespace) -> int:
    backends = _django()
    from benchmarks.environment import BENCH_FILES_DIR, machine, versions

    from benchmarks import report
    from benchmarks.corpus import corpus
    from benchmarks.http_load import WebPod, WebShape
    from benchmarks.jobs_burst import JobBench, WorkerShape, pillow_cpu_seconds_per_job
    from benchmarks.pods import machine_cpus

    shapes = _shapes(Path(args.shapes) if args.shapes else BENCH_DIR / ("shapes-fast.json" if args.fast else "shapes.json"))
    cpus = machine_cpus()
    started = datetime.now(timezone.utc)
    clock = time.monotonic()
    results: dict[str, Any] = {
        "schema": report.SCHEMA,
        "run": {"started_at": started.strftime("%Y-%m-%dT%H:%M:%SZ"), "duration_s": 0.0,
                "mode": "fast" if args.fast else "full",
                "machine": machine(args.instance_type or os.environ.get("BENCH_INSTANCE_TYPE") or None, len(cpus)),
                "versions": {}},
        "jobs": [],
        "http": [],
    }
    _say(f"bench: {len(cpus)} cores, load average {results['run']['machine']['loadavg_at_start']}")
    results["run"]["versions"] = versions(backends)
    if shutil.which("taskset") is None:
        raise SystemExit("bench: taskset (util-linux) is needed to pin pods to their CPUs")

    workdir = Path(tempfile.mkdtemp(prefix="django-eks-bench-"))
    images = corpus()
    pillow_s = pillow_cpu_seconds_per_job(images, passes=1 if args.fast else 3)
    _say(f"bench: compression alone {pillow_s * 1000:.0f} ms CPU per job (corpus of {len(images)} images)")

    jobs_spec = shapes["jobs"]
    web_port = _free_port()
    with JobBench(backends, cpus, workdir, web_port=web_port) as bench:
        for spec in jobs_spec["shapes"]:
            shape = WorkerShape(int(spec["pods"]), int(spec["concurrency"]), float(spec["cpus_per_pod"]))
            row = bench.measure(shape, burst=int(jobs_spec["burst"]), pillow_s=pillow_s)
            results["jobs"].append(row)
            _say(f"jobs  {row['shape']:<16} {row['jobs_per_s']:6.2f} jobs/s  limit {row['limit_jobs_per_s']:5.2f}"
                 f"  ratio {row['ratio']:.2f}  whole path {row['limit_path_jobs_per_s']:5.2f} ratio {row['ratio_path']:.2f}"
                 f"  CPU efficiency {row['cpu_efficiency']:.2f}  per job ms {row['time_per_job_ms']}")

    http_spec = shapes["http"]
    # The server gets the last cores, the load generator (and, locally, PostgreSQL) the others.
    server_cpu_ids = cpus[-1:]
    load_cpu_ids = cpus[:-1] or cpus
    job_id = ""
    cpu_waits: report.CpuWaits = {}
    for spec in http_spec["shapes"]:
        shape = WebShape(spec["server"], spec["worker_class"], int(spec["processes"]), int(spec["threads"]),
                         float(spec.get("cpus", 1.0)))
        cores = max(1, round(shape.cpus + 0.499))
        pinned = cpus[-cores:]
        with WebPod(shape, backends, pinned if cores > 1 else server_cpu_ids, load_cpu_ids, workdir) as pod:
            if not job_id:
                job_id = pod.create_job()
            for workload in http_spec["workloads"]:
                concurrency = max(int(http_spec["min_concurrency"]),
                                  int(http_spec["concurrency_per_slot"]) * shape.request_slots)
                row = pod.measure(workload, duration_s=float(http_spec["duration_s"]), concurrency=concurrency,
                                  job_id=job_id)
                results["http"].append(row)
                cpu_waits[(row["shape"], workload)] = pod.cpu_wait_ms_per_request[workload]
                _say(f"http  {row['shape']:<26} {workload:<3} {row['rps']:7.1f} req/s  p50 {row['latency_ms']['p50']:5.0f} ms"
                     f"  CPU {row['cpu_ms_per_request']:5.2f} ms/req  ratio {row['ratio']:.2f} ({row['bound']})"
                     f"  errors {row['errors']}")
    _forget_job(backends, job_id)
    results["run"]["duration_s"] = round(time.monotonic() - clock, 1)

    table = report.markdown(results, cpu_waits)
    if args.out == "-":
        json.dump(results, sys.stdout, indent=2)
        print()
        _say(table)
    else:
        out = Path(args.out) if args.out else RESULTS_DIR / (
            f"{started.strftime('%Y%m%dT%H%M%SZ')}-{results['run']['machine']['hostname']}.json")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2) + "\n")
        out.with_suffix(".md").write_text(table)
        drew = report.chart(results, out.with_suffix(".png"))
        print(table)
        print(f"bench: wrote {out}, {out.with_suffix('.md')}"
              + (f", {out.with_suffix('.png')}" if drew else " (no chart: matplotlib is not installed)"))
    shutil.rmtree(workdir, ignore_errors=True)
    shutil.rmtree(BENCH_FILES_DIR, ignore_errors=True)
    return 0


def _free_port() -> int:
    from benchmarks.http_load import free_port

    return free_port()


def _forget_job(backends: Any, job_id: str) -> None:
    if not job_id:
        return
    from benchmarks.environment import database_connect

    with database_connect(backends.database_url) as conn:
        conn.execute("DELETE FROM jobs_job WHERE id = %s::uuid", (job_id,))


IO_OFF = ("{url}/api/io answers 404: the service serves it only with API_IO_ENABLED=true in the web "
          "pods' environment (off by default, and in a deployed stack)")


def _io_served(url: str) -> bool:
    """Whether the service answers ``/api/io``; False only for its 404 (the endpoint is off).

    Anything else (an outage, a 5xx) is left for the run itself to count as errors.
    """
    import requests

    try:
        response = requests.get(f"{url.rstrip('/')}/api/io", params={"ms": 0}, timeout=10)
    except requests.RequestException:
        return True
    return response.status_code != 404


def load(args: argparse.Namespace) -> int:
    """The same workloads against a deployed stack's appUrl, for a duration, under a rate cap."""
    if args.duration <= 0 or args.rate <= 0 or args.users <= 0:
        raise SystemExit("load: --duration, --rate and --users must be positive")
    if not args.url.startswith(("http://", "https://")):
        raise SystemExit(f"load: --url must be an http(s) URL such as the stack's appUrl, got {args.url!r}")
    users_per_workload = args.users
    classes = {"jobs": "JobsUser", "io": "IoUser", "db": "DbUser"}
    workloads = args.workloads.split(",")
    unknown = [w for w in workloads if w not in classes]
    if unknown:
        raise SystemExit(f"load: unknown workload(s) {', '.join(unknown)}; choose from {', '.join(classes)}")
    if "io" in workloads and not _io_served(args.url):
        workloads = [w for w in workloads if w != "io"]
        if not workloads:
            raise SystemExit(f"load: {IO_OFF.format(url=args.url.rstrip('/'))}; nothing left to run")
        _say(f"load: skipping the io workload: {IO_OFF.format(url=args.url.rstrip('/'))}")
    total_users = users_per_workload * len(workloads)
    with tempfile.TemporaryDirectory(prefix="django-eks-load-") as tmp:
        prefix = Path(tmp) / "load"
        argv = [str(Path(sys.executable).parent / "locust"), "-f", str(BENCH_DIR / "locustfile.py"), "--headless",
                "--users", str(total_users), "--spawn-rate", str(total_users), "--run-time", f"{args.duration:g}s",
                "--host", args.url.rstrip("/"), "--csv", str(prefix), "--only-summary",
                # Jobs in flight at the end are waited for (and counted), not cut off.
                "--stop-timeout", str(JOB_STOP_TIMEOUT_SECONDS),
                "--loglevel", "WARNING", *(classes[w] for w in workloads)]
        env = {**os.environ, "PYTHONPATH": str(BENCH_DIR.parent), "BENCH_USER_RATE": str(args.rate / total_users)}
        _say(f"load: {args.url} for {args.duration:g} s, {', '.join(workloads)}, {total_users} users, "
             f"at most {args.rate:g} requests (or jobs) per second in all")
        result = subprocess.run(argv, env=env, cwd=BENCH_DIR.parent, capture_output=True, text=True,
                                timeout=args.duration + JOB_STOP_TIMEOUT_SECONDS + 120)
        stats = prefix.with_name("load_stats.csv")
        if not stats.exists():
            raise SystemExit(f"load: locust failed ({result.returncode}):\n{result.stderr[-3000:]}")
        import csv

        with open(stats, newline="") as handle:
            rows = list(csv.DictReader(handle))
    print(f"{'request':<32} {'count':>7} {'errors':>6} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
    for row in rows:
        label = f"{row['Type']} {row['Name']}".strip()
        print(f"{label:<32} {row['Request Count']:>7} {row['Failure Count']:>6} {float(row['Requests/s']):>8.2f} "
              f"{row['50%']:>8} {row['99%']:>8}")
    return 0 if result.returncode in (0, 1) else result.returncode


def stop(args: argparse.Namespace) -> int:
    from benchmarks.worker_stop import measure

    return measure(args.window, args.short, args.long)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run", help="the service in pod shapes on this machine")
    run_parser.add_argument("--fast", action="store_true", help="a few short runs: a smoke test, not a measurement")
    run_parser.add_argument("--shapes", help="shapes file (default benchmarks/shapes.json, or shapes-fast.json)")
    run_parser.add_argument("--out", help="results file, '-' for stdout (default benchmarks/results/<time>-<host>.json)")
    run_parser.add_argument("--instance-type", help="the EC2 type this runs on (or env BENCH_INSTANCE_TYPE)")
    load_parser = commands.add_parser("load", help="the same workloads against a deployed stack")
    load_parser.add_argument("--url", required=True, help="the stack's appUrl")
    load_parser.add_argument("--duration", type=float, default=60, help="seconds (default 60)")
    load_parser.add_argument("--rate", type=float, default=10, help="requests (or jobs) per second in all (default 10)")
    load_parser.add_argument("--users", type=int, default=4, help="concurrent users per workload (default 4)")
    load_parser.add_argument("--workloads", default="jobs,io,db", help="comma-separated: jobs, io, db")
    stop_parser = commands.add_parser("stop", help="a worker stopped with a task running (docs/worker-shutdown.md)")
    stop_parser.add_argument("--window", type=int, default=5, help="WORKER_SOFT_SHUTDOWN_SECONDS (default 5)")
    stop_parser.add_argument("--short", type=float, default=2, help="the short task's seconds (default 2)")
    stop_parser.add_argument("--long", type=float, default=30, help="the long task's seconds (default 30)")
    from benchmarks.servers import add_arguments

    add_arguments(commands.add_parser("servers", help="gunicorn, uWSGI and granian interleaved on one core"))
    args = parser.parse_args(argv)
    return {"run": run, "load": load, "servers": servers, "stop": stop}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
