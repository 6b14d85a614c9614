"""The first `pulumi preview` of a brand-new stack: nothing exists yet, so every value only the
cloud can give is unknown, and the program must still run to the end and show every resource.

In a preview the engine answers a resource that is to be created with its inputs and nothing
else: its id and every computed output are unknown (the Python SDK resolves an empty id and a
missing output as unknown in a dry run: pulumi/runtime/resource.py, "The ID is known if (and
only if) it is a non-empty string", and pulumi/runtime/rpc.py resolve_properties, "We're
previewing ... inform the Output that the value isn't known"). An `apply` on an unknown does not
run (pulumi/output.py Output.apply, "if not (is_known or run_with_unknowns)"), and an invoke
whose arguments hold an unknown is not sent at all (pulumi/runtime/invoke.py _invoke:
`if rpc.struct_contains_unknowns(inputs): return InvokeResult(None, ..., is_known=False)`), nor
one that depends on a resource whose id is unknown (the same function, the dependency gate for
monitors without invoke dependencies, which the mock monitor is). The SDK does that gating
itself: the mock below only answers what gets through.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pytest
from pulumi.output import Unknown
from pulumi.runtime import rpc

from stack.tools.offline import OfflineMocks, OfflineRun, pulumi_config_of, run_program
from tests.infra.support.stack_files import STACKS, stack_run


def as_sentinel(value: Any) -> Any:
    """Inputs as the monitor received them, unknowns back in their wire form (rpc.UNKNOWN)."""
    if isinstance(value, Unknown):
        return rpc.UNKNOWN
    if isinstance(value, dict):
        return {k: as_sentinel(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_sentinel(v) for v in value]
    return value


def known_part(value: Any) -> Any:
    """The inputs without their unknowns, for asking the offline mock what it would add."""
    if isinstance(value, dict):
        return {k: known_part(v) for k, v in value.items() if not isinstance(v, Unknown)}
    if isinstance(value, list):
        return [known_part(v) for v in value if not isinstance(v, Unknown)]
    return value


class FirstPreviewMocks(OfflineMocks):
    """A new stack's preview: inputs come back as given; the id, every output the cloud computes
    (all that the offline mock adds to the inputs, nested fields included) and every auto-name
    are unknown."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        if args.custom is None:  # a read of an existing resource (`Resource.get`) is answered
            return super().new_resource(args)
        known = pulumi.runtime.MockResourceArgs(args.typ, args.name, known_part(dict(args.inputs)),
                                                args.provider, args.resource_id, args.custom)
        _, answered = super().new_resource(known)
        state: dict[str, Any] = as_sentinel(dict(args.inputs))
        for key, value in answered.items():
            if key not in state:
                state[key] = rpc.UNKNOWN
            elif isinstance(value, dict) and isinstance(state[key], dict):
                state[key] = {**{k: rpc.UNKNOWN for k in value}, **state[key]}
        return "", state


_previews: dict[str, OfflineRun] = {}


def first_preview(stack: str) -> OfflineRun:
    if stack not in _previews:
        _previews[stack] = run_program(
            pulumi_config_of(stack), stack=stack, preview=True, mocks_type=FirstPreviewMocks
        )
    return _previews[stack]


@pytest.mark.parametrize("stack", STACKS)
def test_a_new_stacks_first_preview_shows_every_resource(stack: str) -> None:
    preview = first_preview(stack)
    planned = sorted((r.type, r.name) for r in stack_run(stack).resources)
    assert sorted((r.type, r.name) for r in preview.resources) == planned


@pytest.mark.parametrize("stack", STACKS)
def test_the_first_preview_sees_the_clouds_values_unknown(stack: str) -> None:
    """The mock does answer as a first preview: ids and computed outputs are unknown, so what
    the program passes on from them is unknown too (not a placeholder)."""
    preview = first_preview(stack)
    cluster = preview.of_type("aws:eks/cluster:Cluster")[0]
    assert rpc.contains_unknowns(cluster.outputs["endpoint"])
    unknown_inputs = [r for r in preview.resources if rpc.contains_unknowns(r.inputs)]
    assert unknown_inputs, "no resource received an unknown input"
