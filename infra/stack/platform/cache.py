"""ElastiCache (Valkey or Redis OSS): the Celery broker and result backend, and Django's cache.

Both engines speak the same protocol on the same port with the same AUTH token and TLS: the
service's clients, the rediss:// URL and KEDA's redis list scaler do not change with the engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from stack.config.model import RedisConfig
from stack.platform.datastore_network import DatastoreNetworkArgs, datastore_network

REDIS_PORT = 6379


def parameter_group_family(engine: str, engine_version: str) -> str:
    """The cache parameter group family of an engine version: valkey 8.2 -> valkey8,
    redis 7.1 -> redis7 (ElastiCache, "Engine specific parameters")."""
    return f"{engine}{engine_version.split('.')[0]}"


def redis_url(host: str, token: str, port: int = REDIS_PORT, db: int = 0) -> str:
    # TLS is on (in-transit encryption), and kombu/redis-py must verify the server certificate.
    return f"rediss://:{token}@{host}:{port}/{db}?ssl_cert_reqs=required"


@dataclass(frozen=True)
class RedisArgs:
    config: RedisConfig
    network: DatastoreNetworkArgs
    tags: dict[str, str]


class Redis(pulumi.ComponentResource):
    primary_endpoint: pulumi.Output[str]
    member_clusters: pulumi.Output[Sequence[str]]
    """The group's nodes' cache cluster IDs: the CacheClusterId dimension of their metrics."""
    url: pulumi.Output[str]
    """Secret: rediss:// URL with the AUTH token."""
    auth_token: pulumi.Output[str]
    """Secret: the AUTH token alone (KEDA's scaler takes it apart from the address)."""

    def __init__(
        self, name: str, args: RedisArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("django-eks:platform:Redis", name, None, opts)
        config = args.config
        child = pulumi.ResourceOptions(parent=self)

        # ElastiCache AUTH tokens: 16-128 printable characters without / " @; letters and
        # digits only also keep the token safe inside a URL.
        token = random.RandomPassword(f"{name}-auth", length=64, special=False, opts=child)
        network = datastore_network(
            name,
            args.network,
            subnet_group=aws.elasticache.SubnetGroup,
            serves="the Celery broker",
            engine="Redis",
            port=REDIS_PORT,
            tags=args.tags,
            parent=self,
        )
        # Auto-named: a new engine or major version changes the family, which replaces the group,
        # and Pulumi creates the new group, moves the replication group to it in the same
        # modification as the engine, and deletes the old one (no longer in use) last.
        parameters = aws.elasticache.ParameterGroup(
            f"{name}-params",
            family=parameter_group_family(config.engine, config.version),
            description="Celery broker: never evict queued messages",
            parameters=[{"name": "maxmemory-policy", "value": "noeviction"}],
            tags=args.tags,
            opts=child,
        )
        has_replicas = config.replicas > 0
        group = aws.elasticache.ReplicationGroup(
            f"{name}",
            description="Celery broker and Django cache",
            # redis -> valkey is an in-place ModifyReplicationGroup (Engine, EngineVersion and the
            # new family's parameter group in one call); valkey -> redis replaces the group.
            engine=config.engine,
            engine_version=config.version,
            node_type=config.node_type,
            # Cluster mode disabled: one shard, a primary plus replicas. Celery (kombu) cannot
            # use cluster mode (multi-key commands across slots fail with CROSSSLOT).
            cluster_mode="disabled",
            num_cache_clusters=1 + config.replicas,
            automatic_failover_enabled=has_replicas,
            multi_az_enabled=has_replicas,
            port=REDIS_PORT,
            parameter_group_name=parameters.name,
            subnet_group_name=network.subnet_group_name,
            security_group_ids=[network.security_group_id],
            at_rest_encryption_enabled=True,
            transit_encryption_enabled=True,
            auth_token=token.result,
            snapshot_retention_limit=1 if has_replicas else 0,
            apply_immediately=True,
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, additional_secret_outputs=["authToken"]),
        )
        self.primary_endpoint = group.primary_endpoint_address
        self.member_clusters = group.member_clusters
        self.url = pulumi.Output.secret(
            pulumi.Output.all(group.primary_endpoint_address, token.result).apply(
                lambda v: redis_url(v[0], v[1])
            )
        )
        self.auth_token = pulumi.Output.secret(token.result)
        self.register_outputs({"primaryEndpoint": self.primary_endpoint, "url": self.url})
