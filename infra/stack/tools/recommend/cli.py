"""`python -m stack.tools.plan --recommend --jobs-per-hour N --rps M [--name NAME] [--base STACK]`.

The recommender searches and writes the stack file; the plan's command line, which offers this
mode, then plans the file it wrote (so the recommender never imports the plan).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterable
from datetime import date
from pathlib import Path

from stack.config.loader import stack_file
from stack.config.catalog import InstanceType, instance_types
from stack.model.prices import PriceBook
from stack.tools.recommend.search import PoolChoice, best_per_type, shared_choices, web_choices, worker_choices
from stack.tools.recommend.stack_file import (
    Recommendation,
    assemble,
    base_cluster_pods,
    base_document,
    header_lines,
    kept_pods,
    memory_rule,
    stack_file_text,
)
from stack.model.throughput.estimate import ResultsSet
from stack.model.throughput.pods import HEADLINE_HTTP_WORKLOAD
from stack.tools.text import table

TOP = 5
DISK_GIB = 20
"""Root volume of the recommended pools: the config's minimum (the nodes hold images and logs only)."""


def add_recommend_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("recommendations")
    group.add_argument(
        "--recommend",
        action="store_true",
        help="search the catalog for the cheapest stack serving --jobs-per-hour and --rps, print the "
        "best few and write the best as Pulumi.exp-<name>.yaml",
    )
    group.add_argument("--jobs-per-hour", type=float, metavar="N", help="compression jobs per hour to serve")
    group.add_argument("--rps", type=float, metavar="M", help="API requests per second to serve")
    group.add_argument("--name", default="recommended", help="the stack file's name: Pulumi.exp-<name>.yaml")
    group.add_argument("--base", default="dev", help="stack whose other settings the recommendation keeps")
    group.add_argument(
        "--arch",
        choices=("x86_64", "arm64", "any"),
        default="x86_64",
        help="instance architectures to consider (Graviton types need an arm64 image; default x86_64)",
    )


def recommend(
    *,
    jobs_per_hour: float,
    requests_per_second: float,
    results: ResultsSet,
    catalog: Iterable[InstanceType],
    base: dict[str, object],
    prices: PriceBook,
    top: int = TOP,
) -> tuple[list[Recommendation], list[str]]:
    """The cheapest valid stacks for the load, cheapest first, and why others were dropped."""
    types = list(catalog)
    memory = memory_rule(dict(base))
    disk = DISK_GIB
    alongside = kept_pods(dict(base))
    cluster = base_cluster_pods(dict(base))
    webs = best_per_type(
        web_choices(
            types, results, requests_per_second, memory=memory, disk_gib=disk, prices=prices, cluster=cluster,
            alongside=alongside,
        ),
        top + 1,
    )
    workers = best_per_type(
        worker_choices(types, results, jobs_per_hour, memory=memory, disk_gib=disk, prices=prices, cluster=cluster),
        top + 1,
    )
    shared = shared_choices(
        types,
        results,
        jobs_per_hour,
        requests_per_second,
        memory=memory,
        disk_gib=disk,
        prices=prices,
        cluster=cluster,
        alongside=alongside,
    )[: top + 1]
    candidates = [(web, worker, False) for web in webs for worker in workers]
    candidates += [(web, worker, True) for web, worker in shared]
    found: list[Recommendation] = []
    dropped: list[str] = []
    for web, worker, one_pool in candidates:
        rec = assemble(dict(base), web, worker, disk, prices, shared=one_pool)
        if isinstance(rec, str):
            layout = "shared pool" if one_pool else "web + workers pools"
            dropped.append(f"{web.instance_type}/{worker.instance_type} {layout}: {rec}")
        else:
            found.append(rec)
    found.sort(key=lambda r: (round(r.usd_per_month, 2), -min(r.web.margin, r.worker.margin)))
    return found[:top], dropped


def _pool(choice: PoolChoice, shared: bool) -> str:
    return f"{choice.instance_type} x {choice.nodes}" + (" (shared)" if shared else "")


def _served(choice: PoolChoice, unit: str) -> str:
    value = choice.served_per_second * (3600 if unit == "jobs/h" else 1)
    margin = "" if choice.margin == float("inf") else f" ({choice.margin:+.0%})"
    return f"{value:,.0f} {unit}{margin}" if unit == "jobs/h" else f"{value:,.1f} {unit}{margin}"


def render(recs: list[Recommendation], jobs_per_hour: float, rps: float, results: ResultsSet) -> str:
    rows = [
        (
            str(i),
            f"${r.usd_per_month:,.2f}",
            _pool(r.web, r.shared),
            r.web.describe_pods(),
            _served(r.web, "req/s"),
            "same pool" if r.shared else _pool(r.worker, False),
            r.worker.describe_pods(),
            _served(r.worker, "jobs/h"),
        )
        for i, r in enumerate(recs, 1)
    ]
    headers = ("#", "$/month", "web pool", "web pods", "web serves (margin)", "worker pool", "worker pods", "workers serve (margin)")
    bases = sorted({p.per_pod.basis.describe() for r in recs for p in (r.web, r.worker)})
    return "\n".join(
        [
            f"Cheapest stacks for {jobs_per_hour:,.0f} jobs/h and {rps:,.1f} req/s ({HEADLINE_HTTP_WORKLOAD} requests), "
            f"from {', '.join(results.labels())}",
            table(headers, rows, right=(1,)),
            "  layouts: web (with the system pods) and workers in pools of their own, or one shared pool;",
            "  headroom: one spare node per pool (a node's loss), 2+ nodes and 2+ pods per workload (zones);",
            "  minSize = desiredSize = maxSize (the Cluster Autoscaler keeps the spare); maxima: what those nodes hold;",
            "  margin: what the configured replicas serve over the load. $/month: the whole stack (730 h).",
            *(f"  CPU basis: {b}" for b in bases),
        ]
    )


_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,40}")


def run_recommend(
    args: argparse.Namespace, results: ResultsSet | None, prices: PriceBook, root: Path
) -> tuple[int, str | None]:
    """Print the best few and write the best as a stack file: the exit code so far, and the stack
    written (None when nothing was)."""
    problems = []
    if args.jobs_per_hour is None or args.jobs_per_hour < 0:
        problems.append("--jobs-per-hour N (a number >= 0) is required with --recommend")
    if args.rps is None or args.rps < 0:
        problems.append("--rps M (a number >= 0) is required with --recommend")
    if not _NAME.fullmatch(args.name):
        problems.append(f"--name {args.name!r}: 1-41 lowercase letters, digits or '-'")
    if not (root / f"Pulumi.{args.base}.yaml").exists():
        problems.append(f"--base {args.base!r}: no Pulumi.{args.base}.yaml")
    if results is None:
        problems.append("--recommend needs benchmark results (run `make bench`, or pass --results FILE)")
    if problems or results is None:
        for p in problems:
            print(f"error: {p}", file=sys.stderr)
        return 2, None
    catalog = [
        t for t in instance_types().values() if args.arch == "any" or t.architecture == args.arch
    ]
    base = base_document(args.base, root)
    recs, dropped = recommend(
        jobs_per_hour=args.jobs_per_hour,
        requests_per_second=args.rps,
        results=results,
        catalog=catalog,
        base=base,
        prices=prices,
    )
    if not recs:
        print("error: no configuration of the catalog serves this load within the config's bounds", file=sys.stderr)
        for d in dropped[:10]:
            print(f"  {d}", file=sys.stderr)
        return 1, None
    print(render(recs, args.jobs_per_hour, args.rps, results))
    best = recs[0]
    stack = f"exp-{args.name}"
    command = f'make plan ARGS="--recommend --jobs-per-hour {args.jobs_per_hour:g} --rps {args.rps:g}'
    command += "".join(
        f" --{flag} {value}"
        for flag, value, default in (("name", args.name, "recommended"), ("base", args.base, "dev"), ("arch", args.arch, "x86_64"))
        if value != default
    )
    command += '"'
    header = header_lines(
        best,
        command=command,
        jobs_per_hour=args.jobs_per_hour,
        requests_per_second=args.rps,
        results=results.labels(),
        base_stack=args.base,
        today=date.today(),
    )
    stack_file(stack, root).write_text(stack_file_text(best, header))
    return 0, stack
