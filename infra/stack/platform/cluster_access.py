"""Who reaches the cluster's Kubernetes API, and how: EKS access entries from config alone,
and the kubeconfig the stack exports."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from stack.config.model import ClusterConfig
from stack.config.rules import ConfigProblem, StackConfigError

CLUSTER_ADMIN_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
CLUSTER_VIEW_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy"
ACCESS_POLICIES = {"admin": CLUSTER_ADMIN_POLICY, "view": CLUSTER_VIEW_POLICY}


@dataclass(frozen=True)
class AccessGrant:
    """One EKS access entry and the cluster-wide access policy associated with it."""

    principal_arn: str
    level: str
    """Either "admin" or "view" (a key of ACCESS_POLICIES), or "preview" (no access policy:
    a Kubernetes group, see `stack.addons.preview_access`)."""

    @property
    def policy_arn(self) -> str:
        return ACCESS_POLICIES[self.level]

    @property
    def resource_suffix(self) -> str:
        # Stable per principal, whatever its position in the list: adding or removing someone
        # never renames (and so never replaces) anyone else's entry.
        name = self.principal_arn.rsplit("/", 1)[-1]
        return f"{self.level}-{name}-{hashlib.sha256(self.principal_arn.encode()).hexdigest()[:6]}"


def access_grants(config: ClusterConfig) -> list[AccessGrant]:
    """Who gets which cluster access, from config alone: never from who runs `pulumi up`."""
    if not config.access.admin_principal_arns:
        raise StackConfigError(
            [
                ConfigProblem(
                    "cluster.access.adminPrincipalArns",
                    "lists no principal: nobody (not even the deployer) could reach the "
                    "Kubernetes API; add the deploy role's IAM ARN",
                )
            ]
        )
    return [
        *(AccessGrant(arn, "admin") for arn in config.access.admin_principal_arns),
        *(AccessGrant(arn, "view") for arn in config.access.view_principal_arns),
    ]


def access_entries(
    name: str,
    *,
    config: ClusterConfig,
    cluster_name: pulumi.Input[str],
    tags: dict[str, str],
    parent: pulumi.Resource,
) -> list[aws.eks.AccessPolicyAssociation]:
    """An access entry and its cluster-wide policy for every grant of `access_grants`."""
    child = pulumi.ResourceOptions(parent=parent)
    policies = []
    for grant in access_grants(config):
        entry = aws.eks.AccessEntry(
            f"{name}-{grant.resource_suffix}",
            cluster_name=cluster_name,
            principal_arn=grant.principal_arn,
            type="STANDARD",
            tags=tags,
            opts=child,
        )
        policies.append(
            aws.eks.AccessPolicyAssociation(
                f"{name}-{grant.resource_suffix}",
                cluster_name=cluster_name,
                principal_arn=entry.principal_arn,
                policy_arn=grant.policy_arn,
                access_scope={"type": "cluster"},
                opts=child,
            )
        )
    return policies


def kubeconfig(cluster_name: str, endpoint: str, certificate_authority: str, region: str) -> str:
    """A kubeconfig that authenticates with `aws eks get-token` (the aws CLI must be on PATH)."""
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": cluster_name,
                    "cluster": {
                        "server": endpoint,
                        "certificate-authority-data": certificate_authority,
                    },
                }
            ],
            "contexts": [
                {"name": cluster_name, "context": {"cluster": cluster_name, "user": cluster_name}}
            ],
            "current-context": cluster_name,
            "users": [
                {
                    "name": cluster_name,
                    "user": {
                        "exec": {
                            "apiVersion": "client.authentication.k8s.io/v1beta1",
                            "command": "aws",
                            "args": [
                                "eks",
                                "get-token",
                                "--cluster-name",
                                cluster_name,
                                "--region",
                                region,
                                "--output",
                                "json",
                            ],
                        }
                    },
                }
            ],
        }
    )
