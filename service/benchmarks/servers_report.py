"""The server comparison's markdown (schema django-eks-bench-servers/1): medians [min-max] over rounds."""

import statistics
from collections import Counter
from typing import Any

from benchmarks.servers import SLOW_CLIENTS, spread


def _answers(cells: list[dict[str, Any]]) -> str:
    """How the rounds' answers went: `200 in 8/8, 12 [9-30] ms`, or the statuses and the no-answers."""
    count = len(cells)
    ok = [cell["ms"] for cell in cells if cell["status"] == 200]
    parts = [f"200 in {len(ok)}/{count}, {spread(ok, 0)} ms"] if ok else []
    others = Counter("no answer" if cell["status"] is None else str(cell["status"])
                     for cell in cells if cell["status"] != 200)
    parts += [f"{what} in {n}/{count}" for what, n in sorted(others.items())]
    return "; ".join(parts)


def markdown(results: dict[str, Any]) -> str:
    run, machine = results["run"], results["run"]["machine"]
    servers = list(dict.fromkeys(row["server"] for row in results["rounds"]))
    by_server = {server: [row for row in results["rounds"] if row["server"] == server] for server in servers}
    versions = ", ".join(f"{name} {run['versions'].get(name)}" for name in servers)
    lines = [
        f"# Web servers side by side, {run['started_at']} on {machine['hostname']}",
        "",
        f"{machine['cpu_model']}, {machine['cores']} cores; {versions}. {run['rounds']} interleaved rounds "
        f"({' '.join(servers)}, then again), each server pinned to core(s) {run['server_cpus']} with its nginx "
        f"sidecar when measured, the load generator on {run['load_cpus']}; 1 process x {run['threads']} threads, "
        f"{run['duration_s']:g} s of load per figure. Load average (1 min) at start "
        f"{machine['loadavg_at_start'][0]}, at end {run['loadavg_at_end'][0]}; "
        f"{run['duration_total_s'] / 60:.0f} minutes.",
        "",
        "Figures are medians [min-max] over the rounds. CPU is the pod's user + system time per request "
        "(/proc): it varies less with the machine's other load than req/s and latency, which on a shared "
        "machine include waiting for a core. Memory is PSS (shared pages divided among the processes).",
        "",
        "| server | /healthz CPU ms/req | DB read CPU ms/req | DB read + nginx, ms/req (nginx's own) | "
        "io 16 clients req/s, p99 ms | io 64 clients req/s, p99 ms | PSS MiB (nginx) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for server, rows in by_server.items():
        def col(key: str, rows: list[dict[str, Any]] = rows) -> list[float]:
            return [row[key] for row in rows]

        io = {n: (spread([row[f"io{n}"]["rps"] for row in rows], 0), spread([row[f"io{n}"]["p99_ms"] for row in rows], 0))
              for n in (16, 64)}
        lines.append(
            f"| {server} | {spread(col('healthz_cpu_ms'))} | {spread(col('db_cpu_ms'))} | "
            f"{spread(col('nginx_db_cpu_ms'))} ({spread(col('nginx_own_db_cpu_ms'))}) | "
            f"{io[16][0]}, {io[16][1]} | {io[64][0]}, {io[64][1]} | "
            f"{spread(col('pss_mib'), 0)} ({spread(col('nginx_pss_mib'), 1)}) |")
    lowest = {key: min(servers, key=lambda s: statistics.median(row[key] for row in by_server[s]))
              for key in ("healthz_cpu_ms", "db_cpu_ms", "nginx_db_cpu_ms")}
    wins = {server: sum(1 for index in range(run["rounds"])
                        if min((row for row in results["rounds"] if row["round"] == index + 1),
                               key=lambda row: row["db_cpu_ms"])["server"] == server)
            for server in servers}
    lines += [
        "",
        f"Least CPU per request (median): /healthz {lowest['healthz_cpu_ms']}, DB read {lowest['db_cpu_ms']}, "
        f"DB read with nginx {lowest['nginx_db_cpu_ms']}. Rounds where each had the least DB read CPU: "
        + ", ".join(f"{server} {n}/{run['rounds']}" for server, n in wins.items()) + ".",
        "",
        f"## Slow clients: {' and '.join(map(str, SLOW_CLIENTS))} connections trickle an upload body at 1 byte/s",
        "",
        f"Meanwhile another client asks `/healthz` and `GET /api/jobs/<id>` on the pod's port, and `/readyz` on "
        f"the probe port, each waiting at most {run['answer_timeout_s']:g} s. 503 through nginx is its `busy` "
        "answer once its request limit is reached (the request is refused at once, not starved).",
        "",
        "| server | path | slow clients | /healthz | /api/jobs/<id> | probe port /readyz |",
        "| --- | --- | ---: | --- | --- | --- |",
    ]
    for server, rows in by_server.items():
        for key, path in (("slow", "alone"), ("nginx_slow", "nginx sidecar")):
            for count in SLOW_CLIENTS:
                cells = [row[key][str(count)] for row in rows]
                lines.append(f"| {server} | {path} | {count} | {_answers([c['healthz'] for c in cells])} | "
                             f"{_answers([c['db'] for c in cells])} | {_answers([c['probe'] for c in cells])} |")
    lines += [
        "",
        "Limits: one machine shared with other work (see the load average); loopback clients, so no network "
        "latency and no ALB; the database and Redis run on this machine; the load generator is Python "
        "threads, so at 64 clients req/s may be bounded by it rather than by the server (CPU per request is not).",
    ]
    return "\n".join(lines) + "\n"
