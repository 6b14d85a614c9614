"""cluster.version reaches the control plane, the node groups and the add-ons alike."""

from __future__ import annotations

import json
from typing import Any

import pytest

from stack.platform.addon_versions import pinned_addon_version
from tests.infra.support.stack_files import STACKS, run_edited, stack_run


def addon_follows(addon: dict[str, Any], version: str) -> bool:
    """The add-on's version is the one pinned for `version`, or EKS's default for it (which the
    offline engine answers with the Kubernetes version it was asked for)."""
    pinned = pinned_addon_version(addon["addonName"], version)
    if pinned is not None:
        return bool(addon["addonVersion"] == pinned)
    return bool(addon["addonVersion"].endswith(f"-for-{version}"))


@pytest.mark.parametrize("stack", STACKS)
def test_node_groups_and_addons_follow_the_cluster_version(stack: str) -> None:
    run = stack_run(stack)
    version = run.config.cluster.version
    assert run.named("aws:eks/cluster:Cluster", "eks").inputs["version"] == version
    groups = run.of_type("aws:eks/nodeGroup:NodeGroup")
    assert groups and all(g.inputs["version"] == version for g in groups)
    addons = run.of_type("aws:eks/addon:Addon")
    assert addons and all(addon_follows(a.inputs, version) for a in addons)


def test_an_upgrade_moves_everything_to_the_new_version() -> None:
    def downgrade(raw: dict[str, Any]) -> None:
        raw["django-eks:cluster"]["version"] = "1.34"

    run = run_edited(downgrade)
    assert {g.inputs["version"] for g in run.of_type("aws:eks/nodeGroup:NodeGroup")} == {"1.34"}
    assert all(addon_follows(a.inputs, "1.34") for a in run.of_type("aws:eks/addon:Addon"))


@pytest.mark.parametrize("support", ["STANDARD", "EXTENDED"])
def test_support_policy_is_explicit(support: str) -> None:
    def policy(raw: dict[str, Any]) -> None:
        raw["django-eks:cluster"]["supportType"] = support

    cluster = run_edited(policy).named("aws:eks/cluster:Cluster", "eks").inputs
    assert cluster["upgradePolicy"] == {"supportType": support}


def test_vpc_cni_enforces_network_policies() -> None:
    run = stack_run("dev")
    addons = {a.inputs["addonName"]: a.inputs for a in run.of_type("aws:eks/addon:Addon")}
    assert json.loads(addons["vpc-cni"]["configurationValues"]) == {"enableNetworkPolicy": "true"}
    # The others run with their defaults, but the CloudWatch add-on (its agent's config without
    # Application Signals: test_observability).
    configured = {name for name, a in addons.items() if "configurationValues" in a}
    assert configured == {"vpc-cni", "amazon-cloudwatch-observability"}
