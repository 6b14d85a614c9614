"""The Cluster Autoscaler: node groups grow when pods are Pending and shrink when nodes idle.

It discovers the managed node groups' Auto Scaling groups by tag, moves their desired
capacity within the min and max Pulumi sets, and authenticates with EKS Pod Identity. Its IAM
policy is the upstream "full features" policy, with the two actions that change anything
scoped by tag to this cluster's Auto Scaling groups, and the node group lookups to this
cluster's node groups.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pulumi

from stack.addons.helm import HelmChart, PodIdentity
from stack.config.model import NodePoolConfig, StackConfig
from stack.platform.node_pools import node_labels, node_placement

CHART = "cluster-autoscaler"
CHART_REPOSITORY = "https://kubernetes.github.io/autoscaler"
CHART_VERSION = "9.59.0"
"""Chart 9.59.0 (appVersion 1.35.0) from kubernetes/autoscaler @55c37cd5eb, the commit the
IAM policy and values in data/cluster-autoscaler were read at (data/SOURCES.md)."""

IMAGE_REPOSITORY = "registry.k8s.io/autoscaling/cluster-autoscaler"
IMAGE_TAGS = {
    "1.33": "v1.33.6",
    "1.34": "v1.34.5",
    "1.35": "v1.35.2",
}
"""The newest Cluster Autoscaler release of each Kubernetes minor the config allows: git tags
cluster-autoscaler-1.33.6 (be4b5a1, 2026-07-22), -1.34.5 (cb2123e, 2026-07-22) and -1.35.2
(2d42588, 2026-07-22) of https://github.com/kubernetes/autoscaler. The autoscaler's minor must
match the cluster's: it embeds that minor's scheduler to simulate placements."""

NAMESPACE = "kube-system"
SERVICE_ACCOUNT = "cluster-autoscaler"
RELEASE = HelmChart(name=CHART, version=CHART_VERSION, repository=CHART_REPOSITORY, namespace=NAMESPACE)

DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "cluster-autoscaler"
IAM_POLICY_FILE = DATA_DIR / "iam_policy.json"

REQUESTS = {"cpu": "100m", "memory": "600Mi"}
"""The upstream example Deployment's requests (cloudprovider/aws/examples/
cluster-autoscaler-autodiscover.yaml @55c37cd5eb); the chart itself sets none."""

ENABLED_TAG = "k8s.io/cluster-autoscaler/enabled"
NODE_TEMPLATE_PREFIX = "k8s.io/cluster-autoscaler/node-template"

SCOPED_ACTIONS = ("autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup")
"""The policy's only actions that change anything."""


def owner_tag(cluster_name: str) -> str:
    return f"k8s.io/cluster-autoscaler/{cluster_name}"


def discovery_tags(cluster_name: str) -> dict[str, str]:
    """The Auto Scaling group tags auto-discovery and the IAM conditions look for.

    EKS puts these on a managed node group's Auto Scaling group itself; they are set there
    explicitly too, since the IAM policy's conditions depend on them.
    """
    return {ENABLED_TAG: "true", owner_tag(cluster_name): "owned"}


def node_template_tags(pool_name: str, pool: NodePoolConfig) -> dict[str, str]:
    """What a node of the pool will look like, for a scale-up from zero nodes.

    With no node to copy, the autoscaler builds a template node from these Auto Scaling group
    tags: without the label tags it never picks an empty pool for pods that select it, and
    without the taint tags it would add nodes the pods cannot tolerate. They must be on the
    Auto Scaling group: the node group's own tags are not copied there.
    """
    tags = {f"{NODE_TEMPLATE_PREFIX}/label/{key}": value for key, value in node_labels(pool_name, pool).items()}
    for taint in pool.taints:
        tags[f"{NODE_TEMPLATE_PREFIX}/taint/{taint.key}"] = f"{taint.value or ''}:{taint.effect}"
    tags[f"{NODE_TEMPLATE_PREFIX}/resources/ephemeral-storage"] = f"{pool.disk_size_gib}Gi"
    return tags


def auto_scaling_group_tags(cluster_name: str, pool_name: str, pool: NodePoolConfig) -> dict[str, str]:
    return {**discovery_tags(cluster_name), **node_template_tags(pool_name, pool)}


def image_tag(config: StackConfig) -> str:
    return IMAGE_TAGS[config.cluster.version]


def command_args(config: StackConfig) -> dict[str, Any]:
    """The autoscaler's flags (chart `extraArgs`), from config."""
    ca = config.cluster_autoscaler
    return {
        "expander": ca.expander,
        "scale-down-unneeded-time": f"{ca.scale_down_unneeded_minutes}m",
        "scale-down-delay-after-add": f"{ca.scale_down_delay_after_add_minutes}m",
        "scale-down-utilization-threshold": ca.scale_down_utilization_threshold,
        # Zones are spread by the pods' topology constraints; keep same-shaped groups even.
        "balance-similar-node-groups": True,
        # DaemonSet pods (aws-node, kube-proxy) run on every node and move nowhere.
        "skip-nodes-with-system-pods": False,
        "skip-nodes-with-local-storage": False,
        "logtostderr": True,
        "stderrthreshold": "info",
        "v": 2,
    }


def chart_values(config: StackConfig, *, cluster_name: str, system_pool: str) -> dict[str, Any]:
    where = node_placement(system_pool, config.node_pools[system_pool])
    return {
        "cloudProvider": "aws",
        "awsRegion": config.region,
        "autoDiscovery": {"clusterName": cluster_name},
        "image": {"repository": IMAGE_REPOSITORY, "tag": image_tag(config)},
        "extraArgs": command_args(config),
        "rbac": {"serviceAccount": {"create": True, "name": SERVICE_ACCOUNT}},
        "replicaCount": 1,
        "resources": {"requests": dict(REQUESTS), "limits": {"memory": REQUESTS["memory"]}},
        "nodeSelector": where["nodeSelector"],
        "tolerations": where.get("tolerations", []),
        # Never evict the autoscaler to remove the node it runs on.
        "podAnnotations": {"cluster-autoscaler.kubernetes.io/safe-to-evict": "false"},
        "podDisruptionBudget": {"maxUnavailable": 1},
    }


def partition(region: str) -> str:
    """The ARN partition of a region (GovCloud and China regions have their own)."""
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    if region.startswith("cn-"):
        return "aws-cn"
    return "aws"


def upstream_policy() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(IAM_POLICY_FILE.read_text())
    return document


def iam_policy_document(*, cluster_name: str, region: str) -> dict[str, Any]:
    """The upstream policy, every action kept, scoped to this cluster.

    * Describe* and GetInstanceTypesFromInstanceRequirements have no resource-level
      permissions (the service authorization reference lists no resource type for them):
      they stay on "*", and they only read.
    * eks:DescribeNodegroup (labels and taints of an empty group) is limited to this
      cluster's node groups by ARN.
    * SetDesiredCapacity and TerminateInstanceInAutoScalingGroup are limited to Auto Scaling
      groups in this region tagged as this cluster's auto-discovered groups.
    """
    upstream = upstream_policy()
    arn = f"arn:{partition(region)}"
    statements: list[dict[str, Any]] = []
    for statement in upstream["Statement"]:
        actions = list(statement["Action"])
        mutating = [a for a in actions if a in SCOPED_ACTIONS]
        nodegroup = [a for a in actions if a == "eks:DescribeNodegroup"]
        read_only = [a for a in actions if a not in mutating and a not in nodegroup]
        if read_only:
            statements.append({**copy.deepcopy(statement), "Action": read_only, "Resource": ["*"]})
        if nodegroup:
            statements.append(
                {
                    "Effect": "Allow",
                    "Action": nodegroup,
                    "Resource": [f"{arn}:eks:{region}:*:nodegroup/{cluster_name}/*/*"],
                }
            )
        if mutating:
            statements.append(
                {
                    "Effect": "Allow",
                    "Action": mutating,
                    "Resource": [f"{arn}:autoscaling:{region}:*:autoScalingGroup:*:autoScalingGroupName/*"],
                    "Condition": {
                        "StringEquals": {f"aws:ResourceTag/{key}": value for key, value in discovery_tags(cluster_name).items()}
                    },
                }
            )
    return {"Version": upstream["Version"], "Statement": statements}


def pod_identity(cluster: pulumi.Input[str], *, cluster_name: str, region: str) -> PodIdentity:
    """The autoscaler's role: `iam_policy_document`, for the cluster `cluster` (an Output of it)."""
    return PodIdentity(
        cluster_name=cluster,
        service_account=SERVICE_ACCOUNT,
        role_description="Cluster Autoscaler (EKS Pod Identity)",
        policy=json.dumps(iam_policy_document(cluster_name=cluster_name, region=region), separators=(",", ":")),
        policy_description="Cluster Autoscaler, scoped to this cluster's node groups",
    )
