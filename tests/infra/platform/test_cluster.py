"""The EKS cluster (stack/platform/cluster.py): settings from config, the endpoint, the core add-ons."""

from __future__ import annotations

from typing import Any

from tests.infra.support.stack_files import run_edited, stack_run

NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"


def test_cluster_settings_follow_config() -> None:
    run = stack_run("prod")
    cluster = run.named("aws:eks/cluster:Cluster", "eks").inputs
    assert cluster["version"] == run.config.cluster.version
    assert cluster["enabledClusterLogTypes"] == list(run.config.cluster.log_types)
    assert cluster["vpcConfig"]["endpointPrivateAccess"] is True
    assert cluster["vpcConfig"]["endpointPublicAccess"] is True
    assert cluster["vpcConfig"]["publicAccessCidrs"] == run.config.cluster.public_access_cidrs
    assert cluster["accessConfig"]["authenticationMode"] == "API"
    assert cluster["encryptionConfig"]["resources"] == ["secrets"]
    key = run.named("aws:kms/key:Key", "eks-secrets").inputs
    assert key["enableKeyRotation"] is True


def test_private_endpoint_only() -> None:
    def private(raw: dict[str, Any]) -> None:
        raw["django-eks:cluster"]["endpointPublicAccess"] = False

    cluster = run_edited(private).named("aws:eks/cluster:Cluster", "eks").inputs
    assert cluster["vpcConfig"]["endpointPublicAccess"] is False
    assert "publicAccessCidrs" not in cluster["vpcConfig"]


def test_core_addons_are_managed_and_ordered_around_the_nodes() -> None:
    run = stack_run("dev")
    cluster = run.named("django-eks:platform:Cluster", "eks").urn
    addons = {a.inputs["addonName"]: a for a in run.of_type("aws:eks/addon:Addon") if a.parent == cluster}
    assert set(addons) == {"vpc-cni", "kube-proxy", "coredns", "eks-pod-identity-agent", "metrics-server"}
    groups = {g.urn for g in run.of_type(NODE_GROUP)}
    assert groups <= set(addons["coredns"].dependencies)
    assert not groups & set(addons["vpc-cni"].dependencies)
    pool = run.named("django-eks:platform:NodePool", "eks-default")
    assert addons["vpc-cni"].urn in pool.dependencies
