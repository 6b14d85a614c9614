"""The whole stack: compose the platform and the workloads from the validated config."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws

from stack.addons.component import ClusterAddons, ClusterAddonsArgs
from stack.platform.cluster import Cluster, ClusterArgs
from stack.config.model import PROJECT, StackConfig
from stack.config.names import NAMESPACE
from stack.model.cost import stack_estimates
from stack.platform.database import Database, DatabaseArgs
from stack.platform.datastore_network import DatastoreNetworkArgs
from stack.platform.load_balancer import LoadBalancer, LoadBalancerArgs
from stack.platform.network import Network, NetworkArgs
from stack.platform.observability import Observability, ObservabilityArgs
from stack.platform.prometheus import Prometheus, PrometheusArgs
from stack.addons.preview_access import PreviewAccessArgs, preview_access
from stack.platform.cache import Redis, RedisArgs
from stack.platform.registry import Registry, pinned_image, pull_through_prefix
from stack.workloads.proxy import proxy_image
from stack.platform.storage import Storage, StorageArgs, pod_settings
from stack.workloads.component import Workloads, WorkloadsArgs
from stack.workloads.network_policies import s3_prefix_list_name
from stack.model.zones import eks_zone_ids


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
    cluster_name = f"{PROJECT}-{stack}"
    image_cache_prefix = pull_through_prefix(stack)
    cluster = Cluster(
        "eks",
        ClusterArgs(
            cluster_name=cluster_name,
            image_cache_prefix=image_cache_prefix,
            config=config.cluster,
            node_pools=config.node_pools,
            region=config.region,
            vpc_id=network.vpc_id,
            private_subnet_ids=network.private_subnet_ids,
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
            **({"health_check_path": config.app.health_path} if config.app is not None else {}),
        ),
    )
    datastore_network = DatastoreNetworkArgs(
        vpc_id=network.vpc_id,
        subnet_ids=network.private_subnet_ids,
        client_security_group_id=cluster.security_group_id,
    )
    redis = Redis("redis", RedisArgs(config=config.redis, network=datastore_network, tags=tags))
    database = Database("postgres", DatabaseArgs(config=config.database, network=datastore_network, tags=tags))
    registry = Registry("service", tags, image_cache_prefix)
    addons = ClusterAddons(
        "autoscaling",
        ClusterAddonsArgs(
            config=config,
            cluster_name=cluster_name,
            cluster=cluster.name,
            provider=cluster.provider,
            node_groups={name: pool.node_group for name, pool in cluster.node_pools.items()},
            vpc_id=network.vpc_id,
            depends_on=cluster.ready,
            with_load_balancer_controller=config.image.named,
        ),
    )
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
    observability: dict[str, Any] = {}
    if config.observability.enabled:
        watch = Observability(
            "watch",
            ObservabilityArgs(
                config=config,
                cluster_name=cluster_name,
                cluster=cluster.cluster,
                after=cluster.ready,
                load_balancer_arn_suffix=load_balancer.arn_suffix,
                target_group_arn_suffix=load_balancer.target_group_arn_suffix,
                database_identifier=database.identifier,
                cache_member_clusters=redis.member_clusters,
                tags=tags,
            ),
        )
        observability = {"alarmTopicArn": watch.topic_arn, "dashboardName": watch.dashboard_name}
        if config.observability.metrics_enabled:
            metrics = Prometheus(
                "metrics",
                PrometheusArgs(
                    config=config,
                    cluster_name=cluster_name,
                    cluster_arn=cluster.cluster.arn,
                    vpc_id=network.vpc_id,
                    private_subnet_ids=network.private_subnet_ids,
                    cluster_security_group_id=cluster.security_group_id,
                    topic_arn=watch.topic_arn,
                    after=cluster.ready,
                    tags=tags,
                ),
            )
            observability["prometheusQueryUrl"] = metrics.query_url
    app: dict[str, Any] = {"appUrl": load_balancer.url}
    if not config.image.named:
        # A stack without an image yet: the platform and the registry, so the deploy can push
        # the first image before the app exists (a new stack's first, untargeted `pulumi up`:
        # stack.tools.release.bootstrap).
        pulumi.log.warn("neither image.tag nor image.digest is set: the platform is deployed without the app")
    else:
        image = pinned_image(config, registry)
        workloads = Workloads(
            "app",
            WorkloadsArgs(
                config=config,
                provider=cluster.provider,
                target_group_arn=load_balancer.target_group_arn,
                alb_dns_name=load_balancer.dns_name,
                app_url=load_balancer.url,
                redis_url=redis.url,
                redis_auth_token=redis.auth_token,
                database_url=database.url,
                image=image,
                proxy_image=registry.host.apply(lambda host: proxy_image(host, registry.cache_prefix)),
                target_group_binding_name=load_balancer.binding_name,
                s3_cidrs=aws.ec2.get_prefix_list_output(
                    name=s3_prefix_list_name(config.region), region=config.region
                ).cidr_blocks,
                # After the autoscalers, so destroy removes the app (and its ScaledObject) first.
                depends_on=[*cluster.ready, *addons.ready],
                load_balancer_controller=addons.load_balancer_controller,
                extra_settings=storage.bucket_name.apply(lambda bucket: pod_settings(config, bucket=bucket)),
                pod_identity=storage.pod_identity,
            ),
        )
        app = {"appUrl": workloads.app_url, "namespace": workloads.namespace, "image": image}
    # The public listeners forward to the target group only after the web rollout (with the
    # pods healthy in it); without the app there are no targets to wait for.
    load_balancer.serve(after=[workloads.web] if config.image.named else [])
    # After the app: the preview principals' grants in its namespace come after the namespace.
    preview_access(
        "preview",
        PreviewAccessArgs(
            access=config.cluster.access,
            cluster_name=cluster.name,
            provider=cluster.provider,
            app_namespace=app.get("namespace"),
            depends_on=addons.ready,
            tags=tags,
            cluster=cluster,
        ),
    )

    return {
        "clusterName": cluster.name,
        "kubeconfig": cluster.kubeconfig,
        "albDnsName": load_balancer.dns_name,
        **app,
        "redisEndpoint": redis.primary_endpoint,
        "databaseEndpoint": database.address,
        "imageRepositoryUrl": registry.repository_url,
        "imageTag": config.image.tag,
        "filesBucket": storage.bucket_name,
        **observability,
        "nodePoolNames": {
            name: pool.node_group_name for name, pool in cluster.node_pools.items()
        },
        # Plain numbers from the offline cost and capacity model, so that `pulumi preview`
        # shows what a config change does to the monthly bill and the node count.
        **stack_estimates(config),
    }
