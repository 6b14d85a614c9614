"""Security group rules: one TCP port, toward or from one peer (a group or an address range)."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws


def tcp_rule(
    kind: type[aws.vpc.SecurityGroupIngressRule] | type[aws.vpc.SecurityGroupEgressRule],
    name: str,
    *,
    security_group_id: pulumi.Input[str],
    description: str,
    port: int,
    parent: pulumi.Resource,
    referenced_security_group_id: pulumi.Input[str] | None = None,
    cidr_ipv4: str | None = None,
) -> None:
    """`kind` (an ingress or an egress rule) of `security_group_id` for TCP `port` alone, with
    the peer `referenced_security_group_id` or `cidr_ipv4`."""
    kind(
        name,
        security_group_id=security_group_id,
        description=description,
        ip_protocol="tcp",
        from_port=port,
        to_port=port,
        referenced_security_group_id=referenced_security_group_id,
        cidr_ipv4=cidr_ipv4,
        opts=pulumi.ResourceOptions(parent=parent),
    )


def security_group(
    name: str, *, description: str, vpc_id: pulumi.Input[str], tags: dict[str, str], parent: pulumi.Resource
) -> aws.ec2.SecurityGroup:
    """A group with no rule of its own (rules are `tcp_rule`s), tagged with its name."""
    return aws.ec2.SecurityGroup(
        name,
        description=description,
        vpc_id=vpc_id,
        tags={**tags, "Name": name},
        opts=pulumi.ResourceOptions(parent=parent),
    )


def private_security_group(
    name: str,
    *,
    description: str,
    port: int,
    vpc_id: pulumi.Input[str],
    source_security_group_id: pulumi.Input[str],
    tags: dict[str, str],
    parent: pulumi.Resource,
) -> aws.ec2.SecurityGroup:
    """A security group that admits one TCP port from one source group and nothing else."""
    group = security_group(name, description=description, vpc_id=vpc_id, tags=tags, parent=parent)
    tcp_rule(
        aws.vpc.SecurityGroupIngressRule,
        f"{name}-in-{port}",
        security_group_id=group.id,
        # EC2 refuses an apostrophe (and most punctuation) in rule descriptions.
        description=f"Port {port} from the cluster nodes and pods",
        port=port,
        referenced_security_group_id=source_security_group_id,
        parent=parent,
    )
    return group
