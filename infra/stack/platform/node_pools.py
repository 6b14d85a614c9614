"""One EKS managed node group per configured node pool."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from stack.config.catalog import instance_type
from stack.config.model import NODE_POOL_LABEL, NodePoolConfig

_TAINT_EFFECTS = {
    "NoSchedule": "NO_SCHEDULE",
    "NoExecute": "NO_EXECUTE",
    "PreferNoSchedule": "PREFER_NO_SCHEDULE",
}


def ami_type(instance_type_name: str) -> str:
    """AL2023 AMI matching the instance's architecture (AL2 is not offered from 1.33 on)."""
    arch = instance_type(instance_type_name).architecture
    return "AL2023_ARM_64_STANDARD" if arch == "arm64" else "AL2023_x86_64_STANDARD"


def node_labels(pool_name: str, pool: NodePoolConfig) -> dict[str, str]:
    # Managed node group names are generated (see NodePool), so workloads select their pool
    # by this label rather than by eks.amazonaws.com/nodegroup.
    return {**pool.labels, NODE_POOL_LABEL: pool_name}


def node_taints(pool: NodePoolConfig) -> list[aws.eks.NodeGroupTaintArgs]:
    return [
        aws.eks.NodeGroupTaintArgs(
            key=taint.key, value=taint.value, effect=_TAINT_EFFECTS[taint.effect]
        )
        for taint in pool.taints
    ]


def launch_template_block_devices(
    pool: NodePoolConfig,
) -> list[aws.ec2.LaunchTemplateBlockDeviceMappingArgs]:
    return [
        aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
            # AL2023 EKS AMIs boot from /dev/xvda.
            device_name="/dev/xvda",
            ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                volume_size=pool.disk_size_gib,
                volume_type="gp3",
                encrypted="true",
                delete_on_termination="true",
            ),
        )
    ]


# The desired size is only an initial value: whatever scales the group later (the cluster
# autoscaler, or a person in the console) owns it, and `pulumi up` must not scale the group
# back. min and max stay under Pulumi's control, but through NodeGroupScaling
# (stack.platform.node_group_scaling): an update of them here would send the creation-time
# desired size with them, which EKS refuses when the new min is above it.
NODE_GROUP_IGNORE_CHANGES = ["scalingConfig.desiredSize", "scalingConfig.minSize", "scalingConfig.maxSize"]


@dataclass(frozen=True)
class NodePoolArgs:
    pool_name: str
    config: NodePoolConfig
    cluster_name: pulumi.Input[str]
    kubernetes_version: str
    """The cluster's: a change of cluster.version rolls the nodes to the matching AMI."""
    node_role_arn: pulumi.Input[str]
    subnet_ids: pulumi.Input[list[str]]
    tags: dict[str, str]


class NodePool(pulumi.ComponentResource):
    node_group_name: pulumi.Output[str]
    node_group: aws.eks.NodeGroup

    def __init__(
        self, name: str, args: NodePoolArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("django-eks:platform:NodePool", name, None, opts)
        pool = args.config
        child = pulumi.ResourceOptions(parent=self)

        template = aws.ec2.LaunchTemplate(
            f"{name}-lt",
            description=f"Nodes of pool {args.pool_name}",
            # IMDSv2 only, and a hop limit of 1 so pods cannot read the node role's credentials.
            metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
                http_endpoint="enabled",
                http_tokens="required",
                http_put_response_hop_limit=1,
            ),
            block_device_mappings=launch_template_block_devices(pool),
            tag_specifications=[
                aws.ec2.LaunchTemplateTagSpecificationArgs(
                    resource_type="instance", tags={**args.tags, "Name": f"{name}-node"}
                ),
                aws.ec2.LaunchTemplateTagSpecificationArgs(resource_type="volume", tags=args.tags),
            ],
            update_default_version=True,
            tags=args.tags,
            opts=child,
        )

        # No node_group_name: Pulumi generates one, so a change that replaces the group (such
        # as the instance type) creates the new group before deleting the old one.
        self.node_group = aws.eks.NodeGroup(
            f"{name}",
            cluster_name=args.cluster_name,
            version=args.kubernetes_version,
            node_role_arn=args.node_role_arn,
            subnet_ids=args.subnet_ids,
            instance_types=[pool.instance_type],
            ami_type=ami_type(pool.instance_type),
            capacity_type=pool.capacity_type,
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                min_size=pool.min_size,
                desired_size=pool.desired_size,
                max_size=pool.max_size,
            ),
            update_config=aws.eks.NodeGroupUpdateConfigArgs(max_unavailable=1),
            launch_template=aws.eks.NodeGroupLaunchTemplateArgs(
                id=template.id, version=template.latest_version.apply(str)
            ),
            labels=node_labels(args.pool_name, pool),
            taints=node_taints(pool),
            tags={**args.tags, "node-pool": args.pool_name},
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=NODE_GROUP_IGNORE_CHANGES),
        )
        self.node_group_name = self.node_group.node_group_name
        self.register_outputs({"nodeGroupName": self.node_group_name})


def node_placement(pool_name: str, pool: NodePoolConfig) -> dict[str, Any]:
    """nodeSelector for exactly one pool, and tolerations for exactly that pool's taints."""
    tolerations = []
    for taint in pool.taints:
        toleration: dict[str, Any] = {"key": taint.key, "effect": taint.effect}
        if taint.value is None:
            toleration["operator"] = "Exists"
        else:
            toleration["operator"] = "Equal"
            toleration["value"] = taint.value
        tolerations.append(toleration)
    placement: dict[str, Any] = {"nodeSelector": {NODE_POOL_LABEL: pool_name}}
    if tolerations:
        placement["tolerations"] = tolerations
    return placement
