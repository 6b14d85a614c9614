"""Node group bounds after creation: the live desired size is kept unless the new bounds
exclude it, so raising minSize above it never fails an update."""

from __future__ import annotations

import pytest

from stack.autoscaling import node_group_scaling as ngs
from tests.infra.stack_files import STACKS, stack_run


@pytest.mark.parametrize(
    ("live", "low", "high", "desired"),
    [
        (4, 2, 6, 4),  # the autoscaler's choice stands
        (2, 3, 6, 3),  # minSize raised above the live size: desired follows it
        (5, 1, 3, 3),  # maxSize lowered below it: desired follows it down
        (0, 0, 3, 0),  # a pool scaled to zero stays there
    ],
)
def test_desired_size_is_the_live_size_within_the_new_bounds(live: int, low: int, high: int, desired: int) -> None:
    config = ngs.scaling_config(live_desired=live, min_size=low, max_size=high)
    assert config == {"minSize": low, "maxSize": high, "desiredSize": desired}
    # What EKS checks before accepting the update.
    assert config["minSize"] <= config["desiredSize"] <= config["maxSize"]


def test_inverted_bounds_are_refused_with_both_values() -> None:
    with pytest.raises(ValueError, match="minSize 4 and maxSize 2"):
        ngs.scaling_config(live_desired=3, min_size=4, max_size=2)


def test_only_a_change_of_bounds_or_group_is_an_update() -> None:
    old = {"region": "us-east-1", "cluster_name": "c", "node_group_name": "g", "min_size": 1, "max_size": 3}
    provider = ngs._NodeGroupScalingProvider()
    assert not provider.diff("c/g", old, dict(old)).changes
    assert provider.diff("c/g", old, {**old, "min_size": 2}).changes
    assert provider.diff("c/g", old, {**old, "node_group_name": "g2"}).changes
    assert ngs.bounds_changed(old, {**old, "max_size": 6}) == ["max_size"]


@pytest.mark.parametrize("stack", STACKS)
def test_every_node_group_has_its_bounds_from_config(stack: str) -> None:
    run = stack_run(stack)
    bounds = {r.name: r.inputs for r in run.of_type("pulumi-python:dynamic:Resource")}
    for pool_name, pool in run.config.node_pools.items():
        inputs = bounds[f"autoscaling-bounds-{pool_name}"]
        assert (inputs["min_size"], inputs["max_size"]) == (pool.min_size, pool.max_size)
        assert inputs["node_group_name"] == run.outputs["nodePoolNames"][pool_name]
        assert inputs["cluster_name"] == run.outputs["clusterName"]
        assert inputs["region"] == run.config.region


def test_the_provider_survives_the_engines_serialization(tmp_path) -> None:
    # Pulumi stores the provider pickled (dill) in the state and the dynamic provider host
    # unpickles it in a fresh interpreter of the same environment at `pulumi up`.
    import subprocess
    import sys

    from pulumi.dynamic.dynamic import serialize_provider

    blob = serialize_provider(ngs._NodeGroupScalingProvider())
    code = (
        "import base64, sys, dill; p = dill.loads(base64.b64decode(sys.stdin.read())); "
        "old = {'min_size': 1, 'max_size': 3}; "
        "print(type(p).__name__, p.diff('x', old, old).changes, p.diff('x', old, {**old, 'min_size': 2}).changes)"
    )
    result = subprocess.run([sys.executable, "-c", code], input=blob, capture_output=True, text=True, timeout=60,
                            cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["_NodeGroupScalingProvider", "False", "True"]
