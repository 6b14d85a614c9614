"""python -m benchmarks servers: gunicorn, uWSGI and granian side by side, interleaved, on one core.

Each round starts every server in turn (A B C A B C ...), each pinned to the same core (the
machine's last) with the image's default shape (1 process x WEB_THREADS threads, probes on a
port of their own), and measures:

- server CPU per request (the pod's session: user + system, /proc) on ``/healthz`` (the server's
  own overhead) and on ``GET /api/jobs/<id>`` (a database read), then the same database read
  through the web pod's nginx sidecar (``infra/stack/workloads/proxy.py``'s configuration, on
  the same core), whose own CPU counts in that configuration's total;
- req/s and p99 of ``GET /api/io?ms=50`` at 16 and 64 clients;
- memory: the proportional set size (PSS, /proc/<pid>/smaps_rollup) of the server's processes
  after the load, and of nginx's;
- slow clients: while 12, then 64 connections trickle an upload body at 1 byte/s, whether
  another client's ``/healthz`` and ``/api/jobs/<id>`` and the probe port's ``/readyz`` are
  answered within ANSWER_TIMEOUT, and how fast, with and without the sidecar.

The load generator is this process, pinned to the other cores (on a 1-core machine it shares the
server's). CPU-time figures vary less with the machine's other load than req/s and latency do:
the load average at the start and end of the run is recorded beside them.
"""

import argparse
import http.client
import json
import os
import shutil
import statistics
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import requests

from benchmarks.environment import LAUNCH, SERVICE_DIR, Backends, service_env
from benchmarks.http_load import free_port
from benchmarks.pods import Pod, machine_cpus, session_memory_mib
from benchmarks.slow_clients import answer, trickling
from django_eks_runtime.launch import SERVERS, WEB_THREADS

SCHEMA = "django-eks-bench-servers/1"
THREADS = int(WEB_THREADS.default)
SLOW_CLIENTS = (12, 64)
IO_CLIENTS = (16, 64)
CPU_CLIENTS = 16
ANSWER_TIMEOUT = 10.0
SETTLE_SECONDS = 2.0
"""How long the slow clients trickle before the other clients ask: every one has sent its headers."""


def _server_list(value: str) -> list[str]:
    servers = value.split(",")
    unknown = [s for s in servers if s not in SERVERS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown server(s) {', '.join(unknown)}; choose from {', '.join(SERVERS)}")
    return servers


def _positive(kind: type) -> Callable[[str], Any]:
    def parse(value: str) -> Any:
        number = kind(value)
        if number <= 0:
            raise argparse.ArgumentTypeError(f"{value} is not positive")
        return number

    return parse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rounds", type=_positive(int), default=8, help="interleaved rounds (default 8)")
    parser.add_argument("--duration", type=_positive(float), default=2.0,
                        help="seconds of load per measurement (default 2)")
    parser.add_argument("--servers", type=_server_list, default=list(SERVERS),
                        help=f"comma-separated, in round order (default {','.join(SERVERS)})")
    parser.add_argument("--out", help="results file (default benchmarks/results/servers/<time>-<host>.json)")


def load(url: str, path: str, clients: int, duration_s: float) -> dict[str, Any]:
    """`clients` keep-alive connections, each sending GET `path` as soon as the last answer came."""
    host, port = url.removeprefix("http://").split(":")
    deadline = time.monotonic() + duration_s
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients

    def client(index: int) -> None:
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        while time.monotonic() < deadline:
            started = time.perf_counter()
            try:
                conn.request("GET", path, headers={"Host": "localhost"})
                response = conn.getresponse()
                response.read()
                ok = response.status == 200
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection(host, int(port), timeout=30)
                ok = False
            if ok:
                latencies[index].append(time.perf_counter() - started)
            else:
                errors[index] += 1
        conn.close()

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    every = sorted(t for per_client in latencies for t in per_client)
    count = len(every)
    p99 = every[min(count - 1, int(count * 0.99))] * 1000 if count else 0.0
    return {"requests": count, "errors": sum(errors), "rps": count / elapsed, "p99_ms": p99}


class ServerPod:
    """One web pod: the app server (and, when asked, its nginx sidecar) pinned to ``cpu_ids``."""

    def __init__(self, server: str, backends: Backends, cpu_ids: list[int], workdir: Path) -> None:
        self.server, self.cpu_ids, self.workdir = server, cpu_ids, workdir
        port, probe_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.probe_url = f"http://127.0.0.1:{probe_port}"
        self.app = Pod(f"web-{server}", [*LAUNCH, "web"], cpu_ids, float(len(cpu_ids)),
                       service_env(backends, application_name=f"bench-servers-{server}", WEB_SERVER=server,
                                   WEB_PROCESSES="1", WEB_THREADS=str(THREADS), WEB_BIND=f"127.0.0.1:{port}",
                                   PROBE_BIND=f"127.0.0.1:{probe_port}"),
                       SERVICE_DIR, workdir / f"web-{server}.log")
        self.proxy: Pod | None = None
        self.proxy_url = ""

    def __enter__(self) -> "ServerPod":
        self.app.start()
        self.app.wait_until(lambda: _up(f"{self.url}/healthz"), timeout=60, what="/healthz")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proxy is not None:
            self.proxy.stop()
        self.app.stop()

    def start_proxy(self) -> None:
        """The web pod's nginx (the cluster's configuration text) in front of the app, on its core."""
        from stack.workloads.proxy import ProxyArgs, nginx_conf, proxy_command

        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        if not os.access(nginx, os.X_OK):
            raise SystemExit("bench servers: nginx is not installed (apt-get install nginx-light; make install does)")
        port = free_port()
        temp = self.workdir / f"nginx-{self.server}"
        temp.mkdir(exist_ok=True)
        conf = temp / "nginx.conf"
        conf.write_text(nginx_conf(ProxyArgs(listen=f"127.0.0.1:{port}", upstream=self.url.removeprefix("http://"),
                                             max_upload_bytes=10 * 1024 * 1024, keep_alive_seconds=75,
                                             app_timeout_seconds=60, temp_dir=str(temp))))
        argv = proxy_command(str(conf))
        argv[0] = nginx
        if os.geteuid() == 0:  # as root nginx's workers would switch to `nobody`, who cannot enter temp
            argv[-1] = "daemon off; user root;"
        self.proxy = Pod(f"nginx-{self.server}", argv, self.cpu_ids, float(len(self.cpu_ids)), dict(os.environ),
                         temp, self.workdir / f"nginx-{self.server}.log").start()
        self.proxy_url = f"http://127.0.0.1:{port}"
        self.proxy.wait_until(lambda: _up(f"{self.proxy_url}/healthz"), timeout=30, what="nginx /healthz")

    def cpu_seconds(self) -> float:
        return self.app.cpu_seconds() + (self.proxy.cpu_seconds() if self.proxy else 0.0)

    def measure(self, url: str, path: str, clients: int, duration_s: float) -> dict[str, Any]:
        before = self.cpu_seconds()
        result = load(url, path, clients, duration_s)
        cpu = self.cpu_seconds() - before
        self.app.alive()
        if not result["requests"]:
            raise RuntimeError(f"{self.server}: no answer to {path}:\n{self.app.log()[-3000:]}")
        result["cpu_ms_per_request"] = cpu * 1000 / result["requests"]
        return result

    def slow_clients(self, url: str, count: int, job_id: str) -> dict[str, Any]:
        """While `count` connections trickle bodies: does another client (and the probe port) get answers?"""
        targets = {"healthz": f"{url}/healthz", "db": f"{url}/api/jobs/{job_id}", "probe": f"{self.probe_url}/readyz"}
        with trickling(url, count, "body") as held:
            time.sleep(SETTLE_SECONDS)
            with ThreadPoolExecutor(len(targets)) as pool:
                answers = dict(zip(targets, pool.map(lambda u: answer(u, ANSWER_TIMEOUT), targets.values())))
            kept = len(held)
        self.app.alive()
        row: dict[str, Any] = {"held": kept}
        for name, (status, seconds) in answers.items():
            row[name] = {"status": status, "ms": round(seconds * 1000, 1)}
        return row


def _up(url: str) -> bool:
    try:
        return requests.get(url, timeout=1, headers={"Host": "localhost"}).status_code == 200
    except requests.RequestException:
        return False


def measure_server(pod: ServerPod, job_id: str, duration_s: float) -> dict[str, Any]:
    row: dict[str, Any] = {}
    row["healthz_cpu_ms"] = pod.measure(pod.url, "/healthz", CPU_CLIENTS, duration_s)["cpu_ms_per_request"]
    db = pod.measure(pod.url, f"/api/jobs/{job_id}", CPU_CLIENTS, duration_s)
    row["db_cpu_ms"], row["db_rps"] = db["cpu_ms_per_request"], db["rps"]
    for clients in IO_CLIENTS:
        io = pod.measure(pod.url, "/api/io?ms=50", clients, duration_s)
        row[f"io{clients}"] = {"rps": io["rps"], "p99_ms": io["p99_ms"], "errors": io["errors"],
                               "cpu_ms": io["cpu_ms_per_request"]}
    row["pss_mib"] = session_memory_mib(pod.app.pid)
    row["slow"] = {str(count): pod.slow_clients(pod.url, count, job_id) for count in SLOW_CLIENTS}
    pod.start_proxy()
    assert pod.proxy is not None
    proxy_cpu = pod.proxy.cpu_seconds()
    db = pod.measure(pod.proxy_url, f"/api/jobs/{job_id}", CPU_CLIENTS, duration_s)
    row["nginx_db_cpu_ms"] = db["cpu_ms_per_request"]
    row["nginx_own_db_cpu_ms"] = (pod.proxy.cpu_seconds() - proxy_cpu) * 1000 / db["requests"]
    row["nginx_pss_mib"] = session_memory_mib(pod.proxy.pid)
    row["nginx_slow"] = {str(count): pod.slow_clients(pod.proxy_url, count, job_id) for count in SLOW_CLIENTS}
    return row


def _job_id() -> str:
    from jobs.models import Job

    job = Job.objects.create(input_key="uploads/none", input_content_type="image/png", input_bytes=1,
                             input_width=1, input_height=1)
    return str(job.id)


def run(args: argparse.Namespace, backends: Backends) -> int:
    servers = args.servers
    from benchmarks.environment import machine, versions

    cpus = machine_cpus()
    server_cpus, load_cpus = cpus[-1:], (cpus[:-1] or cpus)
    os.sched_setaffinity(0, load_cpus)
    started = datetime.now(timezone.utc)
    results: dict[str, Any] = {
        "schema": SCHEMA,
        "run": {"started_at": started.strftime("%Y-%m-%dT%H:%M:%SZ"), "machine": machine(None, len(cpus)),
                "versions": versions(backends), "rounds": args.rounds, "duration_s": args.duration,
                "threads": THREADS, "server_cpus": server_cpus, "load_cpus": load_cpus,
                "answer_timeout_s": ANSWER_TIMEOUT},
        "rounds": [],
    }
    job_id = _job_id()
    workdir = Path(f"/tmp/django-eks-bench-servers-{os.getpid()}")
    workdir.mkdir(exist_ok=True)
    try:
        for index in range(args.rounds):
            for server in servers:
                with ServerPod(server, backends, server_cpus, workdir) as pod:
                    row = measure_server(pod, job_id, args.duration)
                row.update(round=index + 1, server=server, loadavg=round(os.getloadavg()[0], 2))
                results["rounds"].append(row)
                print(f"round {index + 1} {server:<8} healthz {row['healthz_cpu_ms']:.2f} ms  db {row['db_cpu_ms']:.2f}"
                      f" (+nginx {row['nginx_db_cpu_ms']:.2f})  io64 {row['io64']['rps']:.0f} req/s p99 "
                      f"{row['io64']['p99_ms']:.0f} ms  PSS {row['pss_mib']:.0f} MiB  load {row['loadavg']}",
                      file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    results["run"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    results["run"]["duration_total_s"] = round((datetime.now(timezone.utc) - started).total_seconds(), 1)
    from benchmarks.servers_report import markdown

    # A directory of its own: the plan reads every results/*.json as a `run` results file.
    out = Path(args.out) if args.out else SERVICE_DIR / "benchmarks" / "results" / "servers" / (
        f"{started.strftime('%Y%m%dT%H%M%SZ')}-{results['run']['machine']['hostname']}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    table = markdown(results)
    out.with_suffix(".md").write_text(table)
    print(table)
    print(f"bench servers: wrote {out}, {out.with_suffix('.md')}")
    return 0


def spread(values: list[float], digits: int = 2) -> str:
    """median [min-max]"""
    if not values:
        return "-"
    return f"{statistics.median(values):.{digits}f} [{min(values):.{digits}f}-{max(values):.{digits}f}]"
