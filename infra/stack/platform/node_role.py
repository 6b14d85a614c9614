"""The IAM role of the cluster's nodes: the managed node policies, and filling the registry's
pull-through cache."""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws

from stack.platform.iam import service_trust_policy

NODE_POLICIES = [
    "AmazonEKSWorkerNodePolicy",
    "AmazonEKS_CNI_Policy",
    "AmazonEC2ContainerRegistryReadOnly",
]


def pull_through_policy(region: str, account_id: str, cache_prefix: str) -> dict[str, object]:
    """What a node's first pull of a public image through the cache needs beyond pulling.

    ECR imports the upstream image with the puller's permissions: ecr:BatchImportUpstreamImage,
    and ecr:CreateRepository when the image's repository does not exist yet
    (https://docs.aws.amazon.com/AmazonECR/latest/userguide/pull-through-cache-iam.html).
    AmazonEC2ContainerRegistryReadOnly has neither. Only under the cache's prefix: a node
    cannot create or import into any other repository.
    """
    partition = "aws-cn" if region.startswith("cn-") else "aws-us-gov" if region.startswith("us-gov-") else "aws"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "PullThroughCache",
                "Effect": "Allow",
                "Action": ["ecr:BatchImportUpstreamImage", "ecr:CreateRepository"],
                "Resource": f"arn:{partition}:ecr:{region}:{account_id}:repository/{cache_prefix}/*",
            }
        ],
    }


def node_role(
    name: str, *, region: str, image_cache_prefix: str, tags: dict[str, str], parent: pulumi.Resource
) -> tuple[aws.iam.Role, list[pulumi.Resource]]:
    """The role, and its policies (what a node group must wait for)."""
    child = pulumi.ResourceOptions(parent=parent)
    role = aws.iam.Role(
        f"{name}-node",
        assume_role_policy=service_trust_policy("ec2.amazonaws.com"),
        tags=tags,
        opts=child,
    )
    policies: list[pulumi.Resource] = [
        aws.iam.RolePolicyAttachment(
            f"{name}-node-{policy_name}",
            role=role.name,
            policy_arn=f"arn:aws:iam::aws:policy/{policy_name}",
            opts=child,
        )
        for policy_name in NODE_POLICIES
    ]
    account = aws.get_caller_identity_output().account_id
    policies.append(
        aws.iam.RolePolicy(
            f"{name}-node-pull-through",
            role=role.id,
            policy=account.apply(
                lambda account_id: json.dumps(pull_through_policy(region, account_id, image_cache_prefix))
            ),
            opts=child,
        )
    )
    return role, policies
