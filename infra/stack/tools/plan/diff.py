"""Markdown table of the cost difference between two offline plans.

    python -m stack.tools.plan --stack all --json > base.json   # on the base branch
    python -m stack.tools.plan --stack all --json > pr.json     # on the pull request
    python -m stack.tools.plan.diff base.json pr.json > comment.md

Stacks only in one of the files show as added or removed.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

MARKER = "<!-- offline-plan-cost -->"
"""First line of the comment, so a later run can find and replace it."""


def _stacks(document: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {str(s["stack"]): s for s in document.get("stacks", [])}


def _money(value: float | None) -> str:
    return "n/a" if value is None else f"${value:,.2f}"


def _delta(before: float | None, after: float | None) -> str:
    if before is None or after is None:
        return "n/a"
    change = round(after - before, 2)
    if change == 0:
        return "$0.00"
    percent = f" ({change / before:+.1%})" if before else ""
    return f"{'+' if change > 0 else '-'}${abs(change):,.2f}{percent}"


def _nodes(stack: Mapping[str, Any] | None) -> str:
    if stack is None:
        return "-"
    summary = stack.get("summary") or {}
    if "nodes_desired" not in summary:
        return "n/a"
    return f"{summary['nodes_desired']}/{summary['nodes_max']}"


def _cost(stack: Mapping[str, Any] | None, key: str = "monthly_cost_usd") -> float | None:
    if stack is None:
        return None
    value = (stack.get("summary") or {}).get(key, stack.get(key))
    return None if value is None else float(value)


def _item_changes(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> list[str]:
    def items(stack: Mapping[str, Any] | None) -> dict[str, float]:
        cost = (stack or {}).get("cost") or {}
        return {str(i["item"]): float(i["monthlyUsd"]) for i in cost.get("items", [])}

    old, new = items(before), items(after)
    lines = []
    for name in [*old, *(n for n in new if n not in old)]:
        a, b = old.get(name), new.get(name)
        if a == b:
            continue
        if a is None:
            lines.append(f"  - added: {name} {_money(b)}")
        elif b is None:
            lines.append(f"  - removed: {name} {_money(a)}")
        else:
            lines.append(f"  - {name}: {_money(a)} -> {_money(b)}")
    return lines


def cost_diff_markdown(base: Mapping[str, Any], head: Mapping[str, Any]) -> str:
    """A markdown comment comparing the monthly cost of every stack in two plan documents."""
    old, new = _stacks(base), _stacks(head)
    names = sorted(set(old) | set(new))
    rows = [
        "| stack | base $/month | PR $/month | change | PR $/month at max nodes | nodes desired/max (base -> PR) |",
        "|---|---:|---:|---:|---:|---|",
    ]
    details: list[str] = []
    for name in names:
        b, h = old.get(name), new.get(name)
        label = name + (" (added)" if b is None else " (removed)" if h is None else "")
        rows.append(
            f"| {label} | {_money(_cost(b))} | {_money(_cost(h))} | {_delta(_cost(b), _cost(h))} "
            f"| {_money(_cost(h, 'monthly_cost_at_max_usd'))} | {_nodes(b)} -> {_nodes(h)} |"
        )
        changes = _item_changes(b, h)
        if changes:
            details += [f"- **{name}**", *changes]
        for error in (h or {}).get("errors", []):
            details.append(f"- **{name}** error: {error}")
    price_date = head.get("price_date", "?")
    lines = [
        MARKER,
        "### Offline plan: monthly cost",
        "",
        *rows,
        "",
        f"Prices as of {price_date} ({head.get('price_source', 'bundled')}); a month is 730 hours. "
        "Node pools at desired size. Not included: data transfer, NAT data processing, logs.",
    ]
    if details:
        lines += ["", "<details><summary>What changed</summary>", "", *details, "", "</details>"]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        print("usage: python -m stack.tools.plan.diff BASE.json PR.json", file=sys.stderr)
        return 2
    base, head = (json.loads(Path(a).read_text()) for a in args)
    sys.stdout.write(cost_diff_markdown(base, head))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
