"""The Redis broker (stack/platform/cache.py): private, encrypted, sized from config, reachable from
the cluster only."""

from __future__ import annotations

import pytest

from stack.tools.offline import is_secret
from tests.infra.support.network import ingress_of, subnet_ids
from tests.infra.support.stack_files import STACKS, stack_run

REDIS = "aws:elasticache/replicationGroup:ReplicationGroup"


@pytest.mark.parametrize("stack", STACKS)
def test_redis_is_private_encrypted_and_sized_from_config(stack: str) -> None:
    run = stack_run(stack)
    redis = run.named(REDIS, "redis").inputs
    config = run.config.redis
    assert redis["nodeType"] == config.node_type
    assert redis["numCacheClusters"] == 1 + config.replicas
    assert redis["automaticFailoverEnabled"] is (config.replicas > 0)
    assert redis["multiAzEnabled"] is (config.replicas > 0)
    assert redis["clusterMode"] == "disabled"
    assert redis["atRestEncryptionEnabled"] is True
    assert redis["transitEncryptionEnabled"] is True
    assert is_secret(redis["authToken"])
    assert 16 <= len(redis["authToken"]["value"]) <= 128
    subnets = run.named("aws:elasticache/subnetGroup:SubnetGroup", "redis-subnets").inputs
    assert set(subnets["subnetIds"]) == subnet_ids(run, "private")
    params = run.named("aws:elasticache/parameterGroup:ParameterGroup", "redis-params").inputs
    assert {"name": "maxmemory-policy", "value": "noeviction"} in params["parameters"]


def test_redis_admits_only_the_cluster_on_its_port() -> None:
    assert ingress_of(stack_run("prod"), "redis-sg") == [(6379, 6379, "sg-placeholder-cluster")]
