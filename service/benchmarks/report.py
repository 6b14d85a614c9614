"""The benchmark's outputs: the results file (schema django-eks-bench/2), a markdown table, a chart."""

from pathlib import Path
from typing import Any

SCHEMA = "django-eks-bench/2"
"""/2 adds the jobs' whole-path limit and ratio (limit_path_jobs_per_s, ratio_path) and cpu_efficiency."""
TARGET_RATIO = 0.9

JOB_KEYS = {"shape", "pods", "concurrency", "cpus_per_pod", "jobs", "jobs_per_s", "cpu_s_per_job",
            "limit_jobs_per_s", "ratio", "limit_path_jobs_per_s", "ratio_path", "cpu_efficiency",
            "submit_to_done_ms", "time_per_job_ms"}
HTTP_KEYS = {"shape", "server", "worker_class", "processes", "threads", "cpus", "workload", "concurrency",
             "requests", "rps", "latency_ms", "errors", "cpu_ms_per_request", "limit_rps_threads",
             "limit_rps_cpu", "ratio", "bound"}


def job_shortfall(row: dict[str, Any], machine_cores: int) -> str | None:
    """Where a job shape's time went, when it reached less than the target share of its limit."""
    if row["ratio"] >= TARGET_RATIO:
        return None
    split = row["time_per_job_ms"]
    pillow, worker = split["pillow"], split["worker"]
    parts = [f"per job the worker pods used {worker:.0f} ms of CPU for {pillow:.0f} ms of compression "
             f"(Celery, the database client and the pool: {worker - pillow:.0f} ms)",
             f"the web pod {split['web']:.0f} ms"]
    if "database" in split:
        parts.append(f"PostgreSQL {split['database']:.0f} ms")
    cores = row["pods"] * row["cpus_per_pod"]
    shared = " on the same cores" if cores >= machine_cores else ""
    overhead = worker - pillow + split["web"] + split.get("database", 0.0)
    busy = worker * row["jobs_per_s"] / 1000 / cores
    note = (f"{row['shape']}: {row['ratio']:.2f} of the limit; " + ", ".join(parts)
            + f"{shared}: {overhead:.0f} ms of CPU per job besides compression. The worker pods kept "
            f"their {cores:g} core(s) busy {busy:.0%} of the time")
    if "worker_cpu_wait" in split:
        note += (f"; they waited {split['worker_cpu_wait']:.0f} ms per job runnable but without a CPU "
                 "(their cores were running other processes: see the load average)")
    return note


def http_shortfall(row: dict[str, Any], cpu_wait_ms: float | None = None) -> str | None:
    if row["ratio"] >= TARGET_RATIO:
        return None
    busy = row["rps"] * row["cpu_ms_per_request"] / 1000 / row["cpus"]
    where = (f"{row['shape']} {row['workload']}: {row['ratio']:.2f} of its {row['bound']} limit; "
             f"server CPU {busy:.0%} of {row['cpus']:g} core(s)")
    if cpu_wait_ms is not None:
        where += f", {cpu_wait_ms:.2f} ms of thread time per request runnable but waiting for its core (other processes on it)"
    if row["bound"] == "threads":
        slots = row["processes"] * row["threads"]
        per_request = 1000 * slots / row["rps"] if row["rps"] else float("inf")
        work = 1000 * slots / row["limit_rps_threads"]
        return where + (f"; each of the {slots} request slots spent {per_request:.1f} ms per request against "
                        f"{work:.1f} ms of work: {per_request - work:.1f} ms in the server around it (HTTP "
                        f"parsing, Django, waiting for the interpreter lock shared by {row['threads']} threads)")
    return where + ": the rest of the time the server waited (PostgreSQL, Redis, the load generator)"


CpuWaits = dict[tuple[str, str], float]
"""Runqueue wait in ms per request, by (shape, workload): measured, but not part of the schema."""


def shortfalls(results: dict[str, Any], cpu_waits: CpuWaits | None = None) -> list[str]:
    cores = results["run"]["machine"]["cores"]
    waits = cpu_waits or {}
    notes = [job_shortfall(row, cores) for row in results["jobs"]]
    notes += [http_shortfall(row, waits.get((row["shape"], row["workload"]))) for row in results["http"]]
    return [note for note in notes if note]


def markdown(results: dict[str, Any], cpu_waits: CpuWaits | None = None) -> str:
    run, machine = results["run"], results["run"]["machine"]
    lines = [
        f"# Benchmark {run['started_at']} on {machine['hostname']}",
        "",
        f"{machine['cpu_model']}, {machine['cores']} cores, {machine['memory_mib']} MiB; instance type "
        f"{machine['instance_type'] or 'none (not EC2)'}; load average at start "
        f"{', '.join(str(x) for x in machine['loadavg_at_start'])}; mode {run['mode']}, "
        f"{run['duration_s']:.0f} s.",
        "",
        "## Jobs (burst of compression jobs)",
        "",
        "Worker-only limit: the worker pods' cores / the compression's CPU per job. Whole-path limit: this "
        "machine's cores / all the CPU a job takes (worker, web, PostgreSQL, Redis, the load generator), "
        "since here they share those cores. CPU efficiency: compression CPU / worker CPU per job (the "
        "rest is Celery, the database client and the pool): it does not depend on the neighbours.",
        "",
        "| shape | jobs | jobs/s | worker-only limit (ratio) | whole-path limit (ratio) | CPU efficiency "
        "| submit-to-done p50 / p95 ms | per job ms: compression / worker / web / database / broker / load generator |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for row in results["jobs"]:
        split = row["time_per_job_ms"]
        parts = " / ".join("-" if split.get(key) is None else f"{split[key]:.1f}"
                           for key in ("pillow", "worker", "web", "database", "broker", "load_generator"))
        lines.append(
            f"| {row['shape']} | {row['jobs']} | {row['jobs_per_s']:.2f} | {row['limit_jobs_per_s']:.2f} "
            f"({row['ratio']:.2f}) | {row['limit_path_jobs_per_s']:.2f} ({row['ratio_path']:.2f}) | "
            f"{row['cpu_efficiency']:.2f} | {row['submit_to_done_ms']['p50']:.0f} / "
            f"{row['submit_to_done_ms']['p95']:.0f} | {parts} |")
    lines += [
        "",
        "## HTTP (Locust, keep-alive; limit = min(slots / latency, cores / CPU per request))",
        "",
        "| shape | workload | users | req/s | p50 / p99 ms | errors | CPU ms/req | limit threads | limit CPU | ratio | bound |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for row in results["http"]:
        lines.append(
            f"| {row['shape']} | {row['workload']} | {row['concurrency']} | {row['rps']:.1f} | "
            f"{row['latency_ms']['p50']:.0f} / {row['latency_ms']['p99']:.0f} | {row['errors']} | "
            f"{row['cpu_ms_per_request']:.2f} | {row['limit_rps_threads']:.0f} | {row['limit_rps_cpu']:.0f} | "
            f"{row['ratio']:.2f} | {row['bound']} |")
    notes = shortfalls(results, cpu_waits)
    if notes:
        lines += ["", f"## Below {TARGET_RATIO:.0%} of the limit: where the time went", ""]
        lines += [f"- {note}" for note in notes]
    return "\n".join(lines) + "\n"


def chart(results: dict[str, Any], path: Path) -> bool:
    """Throughput against replicas (jobs) and threads (HTTP), with the limits; False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, axes = plt.subplots(1, 3, figsize=(16, 5))
    jobs = results["jobs"]
    ax = axes[0]
    names = [row["shape"] for row in jobs]
    ax.bar(names, [row["jobs_per_s"] for row in jobs], color="tab:blue", label="measured")
    ax.scatter(names, [row["limit_jobs_per_s"] for row in jobs], color="black", marker="_", s=900,
               label="limit (cores / CPU-s per job)")
    for index, row in enumerate(jobs):
        ax.annotate(f"{row['ratio']:.0%}", (index, row["jobs_per_s"]), ha="center", va="bottom")
    ax.set_title("Compression jobs: replicas vs -c")
    ax.set_ylabel("jobs/s")
    ax.legend(loc="upper left", fontsize="small")
    for ax, workload, title in ((axes[1], "io", "GET /api/io?ms=50 (I/O-bound), 1 CPU"),
                                (axes[2], "db", "GET /api/jobs/<id> (DB read, CPU-bound), 1 CPU")):
        rows = [row for row in results["http"] if row["workload"] == workload]
        for server, colour in (("gunicorn", "tab:green"), ("uwsgi", "tab:purple"), ("granian", "tab:orange")):
            threaded = sorted((row for row in rows if row["server"] == server and row["processes"] == 1
                               and row["worker_class"] != "sync"), key=lambda row: row["threads"])
            if threaded:
                ax.plot([row["threads"] for row in threaded], [row["rps"] for row in threaded], "o-",
                        color=colour, label=f"{server}, 1 process x threads")
            procs = sorted((row for row in rows if row["server"] == server and row["threads"] == 1
                            and (row["processes"] > 1 or row["worker_class"] == "sync")),
                           key=lambda row: row["processes"])
            if procs:
                ax.plot([row["processes"] for row in procs], [row["rps"] for row in procs], "s--",
                        color=colour, label=f"{server}, processes x 1 thread")
        if workload == "io" and rows:
            slots = sorted({row["processes"] * row["threads"] for row in rows})
            per_slot = rows[0]["limit_rps_threads"] / (rows[0]["processes"] * rows[0]["threads"])
            ax.plot(slots, [per_slot * n for n in slots], ":", color="grey", label="limit: threads / 50 ms")
        ax.set_xscale("log", base=2)
        ax.set_ylim(bottom=0)
        ax.set_xlabel("threads (or processes)")
        ax.set_ylabel("req/s")
        ax.set_title(title)
        ax.legend(fontsize="small")
    machine = results["run"]["machine"]
    fig.suptitle(f"{machine['cpu_model']}, {machine['cores']} cores, load {machine['loadavg_at_start'][0]} "
                 f"at start ({results['run']['started_at']})")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True
