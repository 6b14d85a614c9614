"""Command line of the offline plan (`make plan STACK=dev|<name>|all ARGS=...`)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from stack.config.loader import stack_file
from stack.config.rules import StackConfigError
from stack.tools.plan.report import REPO_ROOT, StackPlan, config_from_stack_file, plan_stack, stack_names
from stack.tools.plan.resources import write_manifests
from stack.tools.plan.text import render_side_by_side, render_stack
from stack.model.prices import LivePricesError, PriceBook, bundled_price_book, live_price_book, live_queries
from stack.tools.recommend.cli import add_recommend_arguments, run_recommend
from stack.model.throughput.estimate import ResultsSet, stack_throughput
from stack.model.throughput.compare import compare, with_measured_task_cpu
from stack.model.throughput.measured import MeasuredResults
from stack.model.throughput.options import (
    MeasuredError,
    ResultsError,
    add_results_arguments,
    selected_measured,
    selected_results,
)
from stack.workloads.benchmark import benchmark_problems


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m stack.tools.plan",
        description="Offline plan of a stack: resources, node capacity, monthly cost, warnings.",
    )
    parser.add_argument("--stack", default="dev", help="stack name, or 'all' (default: dev)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    parser.add_argument(
        "--manifests", type=Path, metavar="DIR", help="write the Kubernetes objects as YAML under DIR/<stack>/"
    )
    parser.add_argument(
        "--live-prices",
        action="store_true",
        help="ask the AWS Price List API (needs AWS credentials) instead of the bundled prices",
    )
    add_results_arguments(parser)
    add_recommend_arguments(parser)
    parser.add_argument("--root", type=Path, default=REPO_ROOT, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def _live_prices(stacks: list[str], root: Path) -> tuple[PriceBook, list[str]]:
    types: set[str] = set()
    caches: set[tuple[str, str]] = set()
    databases: set[tuple[str, bool]] = set()
    regions: set[str] = set()
    for stack in stacks:
        try:
            config = config_from_stack_file(stack, root)
        except StackConfigError:
            continue
        regions.add(config.region)
        types |= {p.instance_type for p in config.node_pools.values()}
        caches.add((config.redis.node_type, config.redis.engine))
        databases.add((config.database.instance_class, config.database.multi_az))
    warnings = []
    if len(regions) > 1:
        warnings.append(f"stacks span regions {sorted(regions)}; live prices are those of {min(regions)}")
    queries = live_queries(
        region=min(regions) if regions else "us-east-1",
        instance_types=types,
        cache_node_types=caches,
        database=databases,
    )
    book, more = live_price_book(queries)
    return book, warnings + more


def stack_plan(
    stack: str,
    *,
    prices: PriceBook,
    results: ResultsSet | None,
    results_note: str = "",
    price_warnings: Sequence[str] = (),
    root: Path = REPO_ROOT,
    run_program: bool = True,
    recorded_sink: list[Any] | None = None,
    measured: tuple[MeasuredResults, str] | None = None,
) -> StackPlan:
    """One stack's plan as `make plan` prints it: the report, the prices' and the benchmark
    Job's warnings, the throughput from `results` (or `results_note` saying why none), and the
    `measured` figures (results, label) beside the estimates."""
    plan = plan_stack(stack, prices=prices, root=root, run_program=run_program, recorded_sink=recorded_sink)
    plan.warnings += price_warnings
    plan.throughput_note = results_note
    if plan.config is not None and plan.capacity is not None and plan.config.benchmark.node_pool:
        needed = plan.capacity.pool(plan.config.benchmark.node_pool).nodes_needed
        plan.warnings += benchmark_problems(plan.config, needed)
    if plan.config is not None and plan.config.app is not None:
        # The benchmark results measure the demo service; they say nothing of another app.
        plan.throughput_note = "n/a: the benchmark results measure the demo service, not this stack's app"
    elif results is not None and plan.config is not None and plan.cost is not None:
        plan.throughput = stack_throughput(plan.config, results, prices)
        plan.warnings += [f"throughput: {p}" for p in plan.throughput.problems]
        if measured is not None:
            plan.measured = compare(plan.config, results, measured[0], measured[1], stack)
    if measured is not None and plan.measured is None:
        plan.warnings.append(f"--measured {measured[1]}: no estimate to compare with ({plan.throughput_note or 'no throughput'})")
    return plan


def _plan_recommended(stack: str, prices: PriceBook, root: Path) -> int:
    """The offline plan of the stack file the recommender wrote: its errors fail the command."""
    plan = plan_stack(stack, prices=prices, root=root)
    print(f"\nWrote {stack_file(stack, root).name}; its offline plan: {len(plan.errors)} errors, {len(plan.warnings)} warnings")
    for e in plan.errors:
        print(f"  ERROR   {e}")
    for w in plan.warnings:
        print(f"  warning {w}")
    return 1 if plan.errors else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    root: Path = args.root
    known = stack_names(root)
    if args.stack == "all":
        stacks = known
    elif args.stack in known:
        stacks = [args.stack]
    else:
        print(f"unknown stack {args.stack!r}; stack files: {', '.join(known)} (or 'all')", file=sys.stderr)
        return 2

    prices: PriceBook = bundled_price_book()
    price_warnings: list[str] = []
    if args.live_prices:
        try:
            prices, price_warnings = _live_prices(stacks, root)
        except LivePricesError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2

    try:
        results, results_note = selected_results(args.results, args.no_results, root / "service" / "benchmarks" / "results")
        measured = selected_measured(args.measured)
        if args.recommend and measured is not None and results is not None:
            # The recommender sizes the workers for the stack's own CPU per task.
            results = with_measured_task_cpu(results, *measured)
    except (ResultsError, MeasuredError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    if args.recommend:
        code, written = run_recommend(args, results, prices, root)
        return code if written is None else _plan_recommended(written, prices, root)

    plans: list[StackPlan] = []
    for stack in stacks:
        recorded: list[Any] = []
        plan = stack_plan(
            stack,
            prices=prices,
            price_warnings=price_warnings,
            results=results,
            results_note=results_note,
            root=root,
            recorded_sink=recorded,
            measured=measured,
        )
        if args.manifests is not None and recorded:
            write_manifests(recorded, args.manifests / stack)
        plans.append(plan)

    if args.json:
        document: dict[str, Any] = {
            "price_date": prices.as_of.isoformat(),
            "price_source": prices.source,
            "stacks": [p.as_json() for p in plans],
        }
        print(json.dumps(document, indent=2, default=str))
    else:
        for plan in plans:
            print(render_stack(plan))
        if len(plans) > 1:
            print(render_side_by_side(plans))
        if args.manifests is not None:
            print(f"\nKubernetes manifests written under {args.manifests}/<stack>/")
    return 1 if any(p.errors for p in plans) else 0
