"""infra/stack is built in layers, each a folder, and imports only downward.

Bottom to top: config < model < platform < addons < workloads < program < tools. A module may
import its own layer and the layers below it; nothing imports tools but tools (the program that
Pulumi runs never loads the offline engine, the plan, the recommender, preflight or release). And
no two modules import each other, directly or around a loop.

Where a fact sits follows from who needs it. The config validates instance types against the
catalog and refuses memory limits the pods' uploads and images would exceed, so the catalog
(`config/catalog.py`) and the memory model (`config/memory.py`) are config: `parse_stack_config`
runs every rule itself, and no caller can get a config that skipped one. The models above read
them. The plan is the recommender's front end (`--recommend` is one of its modes): the
recommender searches and writes a stack file, the plan then plans it; their shared text layout
is `tools/text.py`, and the throughput section's text is the plan's (`tools/plan/throughput.py`).
"""

from __future__ import annotations

from tests.infra.support.imports import cycles, import_graph

LAYERS = ["config", "model", "platform", "addons", "workloads", "program", "tools"]

# Modules kept at an old path for what deployed stacks stored, and the layer they belong to.
OLD_PATHS = {"stack.autoscaling": "platform"}

# Known breaches, removed one by one as the modules move; the test fails on any other, and on
# an entry here that no longer happens (so that the list only shrinks).
KNOWN_CYCLES: list[list[str]] = [
]
KNOWN_UPWARD: set[tuple[str, str]] = set()


def layer_of(module: str) -> str:
    """The layer a module of `stack` belongs to: its folder, or its entry in OLD_PATHS."""
    candidates = [m for m in OLD_PATHS if module == m or module.startswith(m + ".")]
    if candidates:
        return OLD_PATHS[max(candidates, key=len)]
    parts = module.split(".")
    if len(parts) < 2 or parts[1] not in LAYERS:
        raise AssertionError(f"{module} is in no layer: move it under one of {LAYERS}")
    return parts[1]


def test_every_module_is_in_a_layer() -> None:
    for module in import_graph():
        if module != "stack":
            layer_of(module)


def unit_of(module: str) -> str:
    """The package a module is part of, below its layer: stack.tools.plan.cli -> stack.tools.plan."""
    parts = module.split(".")
    return ".".join(parts[:3] if len(parts) > 2 and parts[1] in LAYERS else parts[:2])


def test_no_import_cycles() -> None:
    """No cycle among modules, nor among the packages of a layer (plan -> recommend -> plan)."""
    graph = import_graph()
    units: dict[str, set[str]] = {}
    for module, imported in graph.items():
        units.setdefault(unit_of(module), set()).update(unit_of(m) for m in imported)
    for unit, imported in units.items():
        imported.discard(unit)
    found = cycles(graph) + [c for c in cycles(units) if c not in cycles(graph)]
    assert sorted(found) == KNOWN_CYCLES


def test_imports_go_only_downward() -> None:
    upward = set()
    for module, imported in import_graph().items():
        if module == "stack":
            continue
        rank = LAYERS.index(layer_of(module))
        for target in imported:
            if LAYERS.index(layer_of(target)) > rank:
                upward.add((module, target))
    assert upward == KNOWN_UPWARD, "\n".join(f"{a} imports {b} (a higher layer)" for a, b in sorted(upward - KNOWN_UPWARD))
