"""The plan's command-line options for benchmark results, and which files they select."""

from __future__ import annotations

import argparse
from pathlib import Path

from stack.model.throughput.estimate import ResultsSet
from stack.model.throughput.measured import MeasuredError, MeasuredResults, load_measured
from stack.model.throughput.results import RESULTS_DIR, ResultsError, default_results, load_results


def add_results_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--results",
        type=Path,
        action="append",
        metavar="FILE",
        help="benchmark results (make bench) to estimate throughput from; repeat for files measured "
        "on node pools (default: the newest committed run of each machine kind)",
    )
    parser.add_argument(
        "--no-results", action="store_true", help="leave throughput and $ per job out of the plan"
    )
    parser.add_argument(
        "--measured",
        type=Path,
        metavar="PATH",
        help="a stack's measured results (make measure): printed beside each estimate with the ratio; "
        "with --recommend, its CPU per task replaces the benchmark's",
    )


def selected_results(
    results: list[Path] | None, no_results: bool, directory: Path = RESULTS_DIR
) -> tuple[ResultsSet | None, str]:
    """The results the plan uses, or None and why. ResultsError for a file that is bad."""
    if no_results:
        return None, "left out (--no-results)"
    paths = list(results) if results else default_results(directory)
    if not paths:
        return None, (
            f"n/a: no benchmark results under {directory} "
            "(run `make bench`, or pass --results FILE)"
        )
    loaded = [load_results(p) for p in paths]
    return ResultsSet(tuple(loaded)), ""


def selected_measured(path: Path | None) -> tuple[MeasuredResults, str] | None:
    """The measured results named by --measured and their label; MeasuredError for a bad file."""
    if path is None:
        return None
    measured = load_measured(path)
    try:
        label = str(path.resolve().relative_to(RESULTS_DIR.parents[2]))
    except ValueError:
        label = str(path)
    return measured, label


__all__ = ["MeasuredError", "ResultsError", "add_results_arguments", "selected_measured", "selected_results"]
