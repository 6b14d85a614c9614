"""Command line of `make measure` (`python -m stack.tools.measure --stack NAME ...`)."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from stack.config.loader import REPO_ROOT, config_from_stack_file, stack_names
from stack.config.rules import StackConfigError
from stack.model.throughput.measured import MEASURED_DIR, SCHEMA_FILE, schema_problems
from stack.tools.measure.collect import MeasureError, measure
from stack.tools.measure.prometheus import PrometheusApi, PrometheusError
from stack.tools.measure.window import DEFAULT_SINCE, WindowError, window

QUERY_URL_OUTPUT = "prometheusQueryUrl"
"""The stack output holding the AMP workspace's query URL (.../workspaces/<id>/api/v1/)."""


class OutputError(RuntimeError):
    """The stack output could not be read with the Pulumi CLI."""


def stack_output(stack: str, name: str, root: Path = REPO_ROOT) -> str:
    """`pulumi stack output <name> --stack <stack>`, run in the project's directory."""
    pulumi = shutil.which("pulumi")
    if pulumi is None:
        raise OutputError(
            f"the Pulumi CLI is not installed, so the stack output {name} of {stack!r} cannot be read: "
            "install it and log in to the stack's backend, or pass --prometheus-url URL"
        )
    result = subprocess.run(
        [pulumi, "stack", "output", name, "--stack", stack], cwd=root, capture_output=True, text=True, timeout=120
    )
    value = result.stdout.strip()
    if result.returncode != 0 or not value:
        detail = result.stderr.strip() or "no value"
        raise OutputError(
            f"`pulumi stack output {name} --stack {stack}` failed ({detail}); is the stack deployed "
            "with the metrics collection? Or pass --prometheus-url URL"
        )
    return value


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m stack.tools.measure",
        description="A deployed stack's own figures over a window (CPU per task and per request, "
        "tasks, requests, queue wait, pods per node), written as a measured results file.",
    )
    parser.add_argument("--stack", required=True, help="the stack (a Pulumi.<stack>.yaml)")
    parser.add_argument("--since", default=DEFAULT_SINCE, help="window start: a duration before now (2h, 30m) or an ISO time")
    parser.add_argument("--until", default=None, help="window end: a duration before now or an ISO time (default now)")
    parser.add_argument(
        "--prometheus-url",
        default=None,
        help=f"a Prometheus-compatible query URL (default: the stack output {QUERY_URL_OUTPUT})",
    )
    parser.add_argument(
        "--out", type=Path, default=None, help=f"where to write (default {MEASURED_DIR.relative_to(REPO_ROOT)}/<stack>-<UTC stamp>.json)"
    )
    parser.add_argument("--root", type=Path, default=REPO_ROOT, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def _error(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    root: Path = args.root
    known = stack_names(root)
    if args.stack not in known:
        return _error(f"unknown stack {args.stack!r}; stack files: {', '.join(known)}")
    try:
        config = config_from_stack_file(args.stack, root)
    except StackConfigError as e:
        return _error(f"Pulumi.{args.stack}.yaml: {e}")
    now = datetime.now(UTC)
    try:
        start, end = window(args.since, args.until, now)
    except WindowError as e:
        return _error(str(e))
    try:
        url = args.prometheus_url or stack_output(args.stack, QUERY_URL_OUTPUT, root)
        api = PrometheusApi(url)
        document = measure(api, stack=args.stack, config=config, start=start, end=end, measured_at=now)
    except (OutputError, PrometheusError, MeasureError) as e:
        return _error(str(e))
    problems = schema_problems(document)
    if problems:  # a bug here, not bad input: the file would be refused by its readers
        return _error(f"the measured results do not match {SCHEMA_FILE.name}: " + "; ".join(problems))
    out: Path = args.out or MEASURED_DIR / f"{args.stack}-{now.strftime('%Y%m%dT%H%M%SZ')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=2) + "\n")
    print(summary(document, out))
    return 0


def summary(document: dict[str, object], out: Path) -> str:
    """What was measured, in a few lines."""
    window = document["window"]
    assert isinstance(window, dict)
    lines = [
        f"Measured {document['stack']} from {window['start']} to {window['end']} ({window['seconds']:g} s), "
        f"{document['query_url']}"
    ]
    for q in document["queues"]:  # type: ignore[attr-defined]
        lines.append(
            f"  queue {q['queue']} ({q['component']} on {q['instance_type']}): {q['tasks']} tasks, "
            f"CPU per task {q['cpu_seconds_per_task']} s, queue wait p95 {q['queue_wait_p95_seconds']} s"
        )
    web = document["web"]
    if isinstance(web, dict):
        lines.append(
            f"  web ({web['shape']} on {web['instance_type']}): {web['requests']} requests, "
            f"CPU per request {web['cpu_seconds_per_request']} s"
        )
    lines.append(f"Wrote {out}")
    return "\n".join(lines)
