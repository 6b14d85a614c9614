"""What every stack deploys, recorded once and compared on every change (tests/infra/test_unchanged.py).

A snapshot holds, for one stack file, everything a reorganisation of the program must leave as it
is: each registered resource (type, name, URN, parent, dependencies, provider, options and inputs,
secrets shown as "[secret]"), the offline plan's JSON (`python -m stack.tools.plan --json`) and the
Kubernetes manifests its `--manifests` writer renders. Snapshots are canonical JSON (sorted keys)
in tests/infra/snapshots/<stack>.json; the offline runner's placeholders and digests derive from
resource names, so two runs of the same program give the same file.

Write them, after a change that is meant to alter what a stack deploys, with

    uv run python -m tests.infra.snapshots --write

and review the diff; the test never writes them.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

SNAPSHOTS = Path(__file__).resolve().parent
REPO_ROOT = SNAPSHOTS.parents[2]
if str(REPO_ROOT / "infra") not in sys.path:  # run as `python -m`, outside pytest's pythonpath
    sys.path.insert(0, str(REPO_ROOT / "infra"))


def stack_names() -> list[str]:
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in REPO_ROOT.glob("Pulumi.*.yaml"))


def snapshot_path(stack: str) -> Path:
    return SNAPSHOTS / f"{stack}.json"


def _resources(stack: str) -> list[dict[str, Any]]:
    from stack.tools.offline import run_stack

    return [
        {
            "type": r.type,
            "name": r.name,
            "urn": r.urn,
            "parent": r.parent,
            "dependencies": sorted(r.dependencies),
            "provider": r.provider,
            "custom": r.custom,
            "ignore_changes": sorted(r.ignore_changes),
            "retain_on_delete": r.retain_on_delete,
            "replace_on_changes": sorted(r.replace_on_changes),
            "delete_before_replace": r.delete_before_replace,
            "inputs": r.redacted_inputs,
        }
        for r in sorted(run_stack(stack).resources, key=lambda r: r.urn)
    ]


def _plan_and_manifests(stack: str) -> tuple[Any, dict[str, list[Any]]]:
    from stack.tools.plan.cli import main

    with tempfile.TemporaryDirectory() as directory:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            main(["--stack", stack, "--json", "--manifests", directory])
        written = Path(directory) / stack
        # The files are numbered in registration order, which follows the engine's scheduling of
        # independent resources and so varies between runs: key them by what they hold.
        # Objects of one kind and name in several namespaces share a key; the order of keys in
        # a file follows the engine's property maps, so the YAML is compared parsed.
        manifests: dict[str, list[Any]] = {}
        for path in written.glob("*.yaml") if written.exists() else []:
            manifests.setdefault(path.name.split("-", 1)[1], []).append(yaml.safe_load(path.read_text()))
        manifests = {key: sorted(docs, key=canonical) for key, docs in sorted(manifests.items())}
    plan = json.loads(out.getvalue())
    for stack_plan in plan["stacks"]:
        stack_plan["resources"] = sorted(stack_plan["resources"], key=canonical)
    return plan, manifests


def snapshot(stack: str) -> dict[str, Any]:
    """What the stack deploys today, as plain JSON values, in an order that does not depend on
    the order in which the engine happened to register independent resources."""
    plan, manifests = _plan_and_manifests(stack)
    return {"resources": _resources(stack), "plan": plan, "manifests": manifests}


def canonical(value: Any) -> str:
    return json.dumps(value, indent=1, sort_keys=True, default=str) + "\n"


def main(argv: list[str]) -> int:
    if argv != ["--write"]:
        print("usage: python -m tests.infra.snapshots --write", file=sys.stderr)
        return 2
    for stack in stack_names():
        snapshot_path(stack).write_text(canonical(snapshot(stack)))
        print(f"wrote {snapshot_path(stack).relative_to(REPO_ROOT)}")
    return 0
