"""Where a datastore (the Redis cache, the PostgreSQL database) sits in the network: the private
subnets, and a security group that admits its one port from the cluster and nothing else."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from stack.platform.security_groups import private_security_group


@dataclass(frozen=True)
class DatastoreNetworkArgs:
    vpc_id: pulumi.Input[str]
    subnet_ids: pulumi.Input[list[str]]
    """The private subnets (no route from the internet)."""
    client_security_group_id: pulumi.Input[str]
    """The cluster's security group: every node and pod carries it, and only it is admitted."""


@dataclass(frozen=True)
class DatastoreNetwork:
    subnet_group_name: pulumi.Output[str]
    security_group_id: pulumi.Output[str]


def datastore_network(
    name: str,
    args: DatastoreNetworkArgs,
    *,
    subnet_group: type[aws.elasticache.SubnetGroup] | type[aws.rds.SubnetGroup],
    serves: str,
    engine: str,
    port: int,
    tags: dict[str, str],
    parent: pulumi.Resource,
) -> DatastoreNetwork:
    """The datastore's subnet group (`subnet_group`: the ElastiCache or the RDS kind) and its
    security group, `<name>-subnets` and `<name>-sg`. `serves` says what it is for, `engine`
    what answers on `port`."""
    subnets = subnet_group(
        f"{name}-subnets",
        description=f"Private subnets for {serves}",
        subnet_ids=args.subnet_ids,
        tags=tags,
        opts=pulumi.ResourceOptions(parent=parent),
    )
    group = private_security_group(
        f"{name}-sg",
        description=f"{engine}: {port} from the cluster only",
        port=port,
        vpc_id=args.vpc_id,
        source_security_group_id=args.client_security_group_id,
        tags=tags,
        parent=parent,
    )
    return DatastoreNetwork(subnet_group_name=subnets.name, security_group_id=group.id)
