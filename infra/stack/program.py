"""The whole stack: compose the platform and the workloads from the validated config."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws

from stack.cluster import Cluster, ClusterArgs
from stack.config import PROJECT, StackConfig
from stack.cost import stack_estimates
from stack.database import Database, DatabaseArgs
from stack.load_balancer import LoadBalancer, LoadBalancerArgs
from stack.network import Network, NetworkArgs
from stack.redis import Redis, RedisArgs
from stack.registry import Registry
from stack.storage import Storage, StorageArgs, pod_settings
from stack.workloads import Workloads, WorkloadsArgs
from stack.workloads.manifests import NAMESPACE
from stack.zones import eks_zone_ids


def deployer_arn() -> pulumi.Output[str]:
    """The IAM principal running `pulumi up`: the role itself when it is an assumed role."""
    caller = aws.get_caller_identity_output()
    return aws.iam.get_session_context_output(arn=caller.arn).issuer_arn


def build(config: StackConfig) -> dict[str, Any]:
    """Register every resource of the stack; returns the stack outputs."""
    stack = pulumi.get_stack()
    tags = {"project": PROJECT, "stack": stack, "managed-by": "pulumi"}
    # Zones by ID, without the IDs EKS refuses for cluster subnets; Local and Wavelength
    # Zones are not availability zones for this purpose either.
    zones = aws.get_availability_zones_output(
        state="available",
        filters=[{"name": "zone-type", "values": ["availability-zone"]}],
    ).zone_ids.apply(lambda ids: eks_zone_ids(ids, config.network.az_count))

    network = Network("net", NetworkArgs(config.network, zones, tags))
    cluster = Cluster(
        "eks",
        ClusterArgs(
            cluster_name=f"{PROJECT}-{stack}",
            config=config.cluster,
            node_pools=config.node_pools,
            region=config.region,
            vpc_id=network.vpc_id,
            private_subnet_ids=network.private_subnet_ids,
            admin_principal_arn=deployer_arn(),
            tags=tags,
        ),
    )
    load_balancer = LoadBalancer(
        "web",
        LoadBalancerArgs(
            config=config.load_balancer,
            vpc_id=network.vpc_id,
            public_subnet_ids=network.public_subnet_ids,
            target_security_group_id=cluster.security_group_id,
            deregistration_delay_seconds=config.web.graceful_timeout_seconds,
            tags=tags,
        ),
    )
    redis = Redis(
        "redis",
        RedisArgs(
            config=config.redis,
            vpc_id=network.vpc_id,
            subnet_ids=network.private_subnet_ids,
            client_security_group_id=cluster.security_group_id,
            tags=tags,
        ),
    )
    database = Database(
        "postgres",
        DatabaseArgs(
            config=config.database,
            vpc_id=network.vpc_id,
            subnet_ids=network.private_subnet_ids,
            client_security_group_id=cluster.security_group_id,
            tags=tags,
        ),
    )
    registry = Registry("service", tags)
    repository = (
        pulumi.Output.from_input(config.image.repository)
        if config.image.repository
        else registry.repository_url
    )
    image = repository.apply(lambda repo: f"{repo}:{config.image.tag}")

    storage = Storage(
        "files",
        StorageArgs(
            config=config,
            cluster_name=cluster.name,
            namespace=NAMESPACE,
            vpc_id=network.vpc_id,
            private_route_table_ids=network.private_route_table_ids,
            tags=tags,
        ),
    )

    workloads = Workloads(
        "app",
        WorkloadsArgs(
            config=config,
            provider=cluster.provider,
            cluster_name=cluster.name,
            vpc_id=network.vpc_id,
            target_group_arn=load_balancer.target_group_arn,
            alb_dns_name=load_balancer.dns_name,
            app_url=load_balancer.url,
            redis_url=redis.url,
            database_url=database.url,
            image=image,
            depends_on=cluster.ready,
            extra_settings=storage.bucket_name.apply(
                lambda bucket: pod_settings(config.storage, bucket=bucket, region=config.region)
            ),
            pod_identity=storage.pod_identity,
        ),
    )

    return {
        "clusterName": cluster.name,
        "kubeconfig": cluster.kubeconfig,
        "albDnsName": load_balancer.dns_name,
        "appUrl": workloads.app_url,
        "namespace": workloads.namespace,
        "redisEndpoint": redis.primary_endpoint,
        "databaseEndpoint": database.address,
        "imageRepositoryUrl": registry.repository_url,
        "filesBucket": storage.bucket_name,
        "nodePoolNames": {
            name: pool.node_group_name for name, pool in cluster.node_pools.items()
        },
        # Plain numbers from the offline cost and capacity model, so that `pulumi preview`
        # shows what a config change does to the monthly bill and the node count.
        **stack_estimates(config),
    }
