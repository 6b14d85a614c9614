"""The EKS add-ons of the cluster: which, in which order around the node groups, at which
build (`stack.platform.addon_versions`) and with which configuration."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pulumi
import pulumi_aws as aws

from stack.platform.addon_versions import pinned_addon_version

# Add-ons the nodes need to become Ready: installed before the node groups.
ADDONS_BEFORE_NODES = ["vpc-cni", "kube-proxy", "eks-pod-identity-agent"]
# Add-ons that run as Deployments and so need nodes to reach ACTIVE: installed after them.
ADDONS_AFTER_NODES = ["coredns", "metrics-server"]

VPC_CNI_CONFIGURATION = {
    # Starts the network policy agent (aws-eks-nodeagent) next to aws-node, so the app
    # namespace's NetworkPolicies are enforced (eBPF; VPC CNI 1.14+, Kubernetes 1.25+ and the
    # BPF file system the AL2023 AMIs mount). EKS's add-on schema takes the flag as a string.
    # https://docs.aws.amazon.com/eks/latest/userguide/cni-network-policy.html
    "enableNetworkPolicy": "true",
}


def addon_version(addon: str, kubernetes_version: str) -> pulumi.Input[str]:
    """The pinned build, or EKS's default build for that Kubernetes version (never the newest)."""
    pinned = pinned_addon_version(addon, kubernetes_version)
    if pinned is not None:
        return pinned
    return aws.eks.get_addon_version_output(
        addon_name=addon, kubernetes_version=kubernetes_version, most_recent=False
    ).version


def addon_configuration(addon: str) -> str | None:
    """The add-on's configuration values (JSON), or None for its defaults."""
    if addon == "vpc-cni":
        return json.dumps(VPC_CNI_CONFIGURATION)
    return None


def eks_addon(
    name: str,
    addon: str,
    *,
    cluster: aws.eks.Cluster,
    kubernetes_version: str,
    depends_on: Sequence[pulumi.Resource],
    parent: pulumi.Resource,
    pod_identity: Sequence[aws.eks.AddonPodIdentityAssociationArgs] | None = None,
    configuration: dict[str, object] | None = None,
) -> aws.eks.Addon:
    """An EKS add-on; `pod_identity`: the roles its service accounts get through EKS Pod Identity
    (EKS creates and deletes the associations with the add-on); `configuration`: its
    configuration values where they depend on the stack (else `addon_configuration`)."""
    return aws.eks.Addon(
        f"{name}-{addon}",
        cluster_name=cluster.name,
        addon_name=addon,
        # The build pinned for the configured Kubernetes version (stack.platform.addon_versions): a
        # change of cluster.version moves every add-on with it, and nothing else does.
        addon_version=addon_version(addon, kubernetes_version),
        configuration_values=json.dumps(configuration) if configuration is not None else addon_configuration(addon),
        resolve_conflicts_on_create="OVERWRITE",
        resolve_conflicts_on_update="PRESERVE",
        pod_identity_associations=list(pod_identity) if pod_identity else None,
        opts=pulumi.ResourceOptions(parent=parent, depends_on=list(depends_on)),
    )
