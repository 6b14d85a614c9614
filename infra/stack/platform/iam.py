"""IAM roles that pods assume through EKS Pod Identity.

The load balancer controller, the Cluster Autoscaler and the app's pods (for the files bucket)
each get a role the eks-pod-identity-agent assumes for one service account; nodes give pods
nothing (IMDSv2, hop limit 1). One trust policy serves every such role.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pulumi
import pulumi_aws as aws

POD_IDENTITY_PRINCIPAL = "pods.eks.amazonaws.com"


def trust_policy() -> dict[str, Any]:
    """Lets the EKS Pod Identity agent assume the role for the associated service account."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": POD_IDENTITY_PRINCIPAL},
                # TagSession: Pod Identity tags the session with the cluster, namespace and
                # service account.
                "Action": ["sts:AssumeRole", "sts:TagSession"],
            }
        ],
    }


def service_trust_policy(service: str) -> str:
    """Lets an AWS service (`eks.amazonaws.com`, `ec2.amazonaws.com`) assume the role."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": service},
                    "Action": ["sts:AssumeRole"],
                }
            ],
        }
    )


def managed_policy_identity(
    name: str,
    *,
    cluster_name: pulumi.Input[str],
    namespace: str,
    service_account: str,
    role_description: str,
    policy: pulumi.Input[str],
    policy_description: str,
    parent: pulumi.Resource,
    aliases: Sequence[pulumi.Alias] | None = None,
) -> aws.eks.PodIdentityAssociation:
    """A role with one managed policy, associated with `namespace/service_account`.

    The association waits for the policy attachment: credentials are handed out when a pod
    starts, and a pod that starts with a role lacking its policy fails its first calls.
    `aliases` (where the four resources were before a move) apply to each of them.
    """

    def child(*after: pulumi.Resource) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(
            parent=parent, depends_on=list(after) or None, aliases=list(aliases) if aliases else None
        )

    role = aws.iam.Role(
        name,
        assume_role_policy=json.dumps(trust_policy()),
        description=role_description,
        opts=child(),
    )
    managed = aws.iam.Policy(name, policy=policy, description=policy_description, opts=child())
    attachment = aws.iam.RolePolicyAttachment(name, role=role.name, policy_arn=managed.arn, opts=child())
    return aws.eks.PodIdentityAssociation(
        name,
        cluster_name=cluster_name,
        namespace=namespace,
        service_account=service_account,
        role_arn=role.arn,
        opts=child(attachment),
    )
