"""The benchmark results the throughput, plan and recommender tests read (`make bench`'s format)."""

from __future__ import annotations

from pathlib import Path

BENCH_SMALL = Path(__file__).parent / "fixtures" / "bench-small.json"
"""A small results file whose figures the tests work out by hand."""
