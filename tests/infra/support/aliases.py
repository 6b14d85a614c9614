"""What the program's aliases resolve to: the URN under which the engine looks for a resource's
old state.

pulumi/pulumi pkg/resource/deploy/step_generator.go `collapseAliasToUrn` (L545-585): an alias
spec's empty fields take the resource's own name and type, an empty parent is the resource's
own parent (`noParent` the root), and the URN is CreateURN(name, type, parent), where the root
stack's type is left out of the parent type chain. `generateAliases` then matches the old state
by each such URN.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from stack.tools import offline
from stack.tools.offline import RecordedResource

ROOT_STACK_TYPE = "pulumi:pulumi:Stack"


def _qualified_type(urn: str) -> str:
    # urn:pulumi:<stack>::<project>::<qualified type>::<name>
    qualified = urn.split("::")[2]
    # The engine leaves the root stack out of its children's URNs; the mock monitor keeps it
    # in the URN of a component the stack parents.
    return qualified.removeprefix(f"{ROOT_STACK_TYPE}$")


def alias_urn(spec: Any, resource: RecordedResource) -> str:
    """The URN an alias spec (`alias_pb2.Alias.Spec`, as the SDK sends it) stands for."""
    name = spec.name or resource.name
    type_ = spec.type or resource.type
    parent = "" if spec.noParent else (spec.parentUrn or resource.parent)
    stack_and_project = resource.urn.split("::")[:2]
    parent_type = _qualified_type(parent) if parent else ""
    chain = f"{parent_type}${type_}" if parent_type and parent_type != ROOT_STACK_TYPE else type_
    return "::".join([*stack_and_project, chain, name])


def child_urn(parent: RecordedResource, type_: str, name: str) -> str:
    """The URN a resource of `type_` and `name` has (had) under `parent`."""
    return "::".join([*parent.urn.split("::")[:2], f"{_qualified_type(parent.urn)}${type_}", name])


@contextmanager
def recorded_alias_specs(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[tuple[str, str], list[Any]]]:
    """Within the block, every offline run records each resource's alias specs, by (type, name),
    as the SDK registers them with the engine."""
    specs: dict[tuple[str, str], list[Any]] = {}
    register = offline._RecordingMonitor.RegisterResource

    def recording(self: offline._RecordingMonitor, request: Any) -> Any:
        specs[(request.type, request.name)] = [a.spec for a in request.aliases if a.HasField("spec")]
        return register(self, request)

    with monkeypatch.context() as patch:
        patch.setattr(offline._RecordingMonitor, "RegisterResource", recording)
        yield specs
