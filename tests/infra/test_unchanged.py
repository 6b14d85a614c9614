"""Every stack deploys what its committed snapshot says: resources, plan JSON and manifests.

A change that is meant to leave behaviour alone (a module moved, a function split) keeps this
green; one that is meant to change what a stack deploys regenerates the snapshots with
`uv run python -m tests.infra.snapshots --write` and shows the difference in review.
"""

from __future__ import annotations

import difflib
import json

import pytest

from tests.infra.snapshots import canonical, snapshot, snapshot_path, stack_names

STACKS = stack_names()


def test_every_stack_file_has_a_snapshot() -> None:
    missing = [s for s in STACKS if not snapshot_path(s).exists()]
    assert not missing, f"no snapshot for {missing}: uv run python -m tests.infra.snapshots --write"


@pytest.mark.parametrize("stack", STACKS)
def test_stack_deploys_what_its_snapshot_records(stack: str) -> None:
    recorded = snapshot_path(stack).read_text()
    current = canonical(json.loads(canonical(snapshot(stack))))
    if current != recorded:
        diff = difflib.unified_diff(
            recorded.splitlines(), current.splitlines(), f"snapshot {stack}", f"now {stack}", lineterm="", n=2
        )
        shown = "\n".join(list(diff)[:80])
        pytest.fail(
            f"{stack} no longer deploys what tests/infra/snapshots/{stack}.json records "
            f"(regenerate with `uv run python -m tests.infra.snapshots --write` if meant):\n{shown}"
        )
