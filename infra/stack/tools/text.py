"""Plain-text layout for a terminal, shared by the plan and the recommender: tables and dollars."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], right: Sequence[int] = ()) -> str:
    """Columns padded to their widest cell; columns in `right` right-aligned."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        return "  ".join(
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i]) for i, cell in enumerate(row)
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule, *(line(r) for r in cells[1:])])


def usd(value: float | None) -> str:
    return "n/a" if value is None else f"${value:,.2f}"


def unit_usd(value: float | None) -> str:
    """Dollars per unit of work: four decimals below a dollar, cents above."""
    return "n/a" if value is None else f"${value:,.4f}" if value < 1 else f"${value:,.2f}"
