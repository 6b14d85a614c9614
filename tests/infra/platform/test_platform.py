"""The AWS platform: values flow from config to resources, and the security properties hold."""

from __future__ import annotations

import ipaddress
import json
from typing import Any

import pytest

from stack.config.model import NODE_POOL_LABEL
from stack.platform.load_balancer import STANDBY_PORT
from stack.platform.network import subnet_layout
from stack.tools.offline import OfflineRun, RecordedResource, is_secret
from tests.infra.support.stack_files import STACKS, run_edited, stack_run

NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
REDIS = "aws:elasticache/replicationGroup:ReplicationGroup"
RDS = "aws:rds/instance:Instance"
ALB = "aws:lb/loadBalancer:LoadBalancer"
LISTENER = "aws:lb/listener:Listener"
SUBNET = "aws:ec2/subnet:Subnet"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
CERT = "arn:aws:acm:us-east-1:123456789012:certificate/12345678-1234-1234-1234-123456789012"


def node_group(run: OfflineRun, pool: str) -> RecordedResource:
    return run.named(NODE_GROUP, f"eks-{pool}")


def subnet_ids(run: OfflineRun, kind: str) -> set[str]:
    return {f"{r.name}-placeholder-id" for r in run.of_type(SUBNET) if f"-{kind}-" in r.name}


# --- node pools -------------------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_each_configured_pool_is_a_managed_node_group_with_its_settings(stack: str) -> None:
    run = stack_run(stack)
    assert len(run.of_type(NODE_GROUP)) == len(run.config.node_pools)
    for name, pool in run.config.node_pools.items():
        group = node_group(run, name).inputs
        assert group["instanceTypes"] == [pool.instance_type]
        assert group["scalingConfig"] == {
            "minSize": pool.min_size,
            "desiredSize": pool.desired_size,
            "maxSize": pool.max_size,
        }
        assert group["capacityType"] == pool.capacity_type
        assert group["labels"] == {**pool.labels, NODE_POOL_LABEL: name}
        assert [(t["key"], t.get("value"), t["effect"]) for t in group.get("taints", [])] == [
            (t.key, t.value, {"NoSchedule": "NO_SCHEDULE", "NoExecute": "NO_EXECUTE",
                              "PreferNoSchedule": "PREFER_NO_SCHEDULE"}[t.effect])
            for t in pool.taints
        ]
        # Generated names let a replacement create the new group before deleting the old.
        assert "nodeGroupName" not in group and "nodeGroupNamePrefix" not in group


def test_prod_pools_keep_web_and_worker_nodes_apart() -> None:
    run = stack_run("prod")
    workers = node_group(run, "workers").inputs
    assert workers["taints"] == [{"key": "workload", "value": "worker", "effect": "NO_SCHEDULE"}]
    assert "taints" not in node_group(run, "web").inputs or not node_group(run, "web").inputs["taints"]


def test_node_group_desired_size_is_left_to_autoscaling_after_creation() -> None:
    # min and max are set after creation by NodeGroupScaling (see its tests), never by an
    # update of the node group, which would resend the creation-time desired size.
    for group in stack_run("prod").of_type(NODE_GROUP):
        assert group.ignore_changes == ["scalingConfig.desiredSize", "scalingConfig.minSize", "scalingConfig.maxSize"]


def test_launch_template_requires_imdsv2_and_encrypts_a_gp3_root_volume() -> None:
    run = stack_run("prod")
    for template in run.of_type(LAUNCH_TEMPLATE):
        metadata = template.inputs["metadataOptions"]
        assert metadata["httpTokens"] == "required"
        assert metadata["httpPutResponseHopLimit"] == 1
        (disk,) = template.inputs["blockDeviceMappings"]
        assert disk["ebs"]["encrypted"] == "true"
        assert disk["ebs"]["volumeType"] == "gp3"
    sizes = sorted(t.inputs["blockDeviceMappings"][0]["ebs"]["volumeSize"] for t in run.of_type(LAUNCH_TEMPLATE))
    assert sizes == sorted(p.disk_size_gib for p in run.config.node_pools.values())


def test_ami_type_follows_the_instance_architecture() -> None:
    def graviton_workers(raw: dict[str, Any]) -> None:
        raw["django-eks:nodePools"]["arm"] = {"instanceType": "m6g.large", "minSize": 1, "desiredSize": 1, "maxSize": 2}

    run = run_edited(graviton_workers)
    assert node_group(run, "arm").inputs["amiType"] == "AL2023_ARM_64_STANDARD"
    assert node_group(run, "default").inputs["amiType"] == "AL2023_x86_64_STANDARD"


@pytest.mark.parametrize("stack", STACKS)
def test_nodes_run_only_in_private_subnets(stack: str) -> None:
    run = stack_run(stack)
    private = subnet_ids(run, "private")
    assert len(private) == run.config.network.az_count
    for group in run.of_type(NODE_GROUP):
        assert set(group.inputs["subnetIds"]) == private


# --- network ----------------------------------------------------------------------------


def test_subnet_layout_fits_the_vpc_and_gives_pods_most_addresses() -> None:
    layout = subnet_layout("10.20.0.0/16", 3)
    vpc = ipaddress.IPv4Network("10.20.0.0/16")
    nets = [ipaddress.IPv4Network(c) for c in layout.private + layout.public]
    assert all(n.subnet_of(vpc) for n in nets)
    assert not any(a.overlaps(b) for i, a in enumerate(nets) for b in nets[i + 1 :])
    assert [n.num_addresses for n in nets[:3]] == [8192] * 3


@pytest.mark.parametrize(("stack", "nats"), [("dev", 1), ("prod", 3)])
def test_nat_layout_follows_config(stack: str, nats: int) -> None:
    run = stack_run(stack)
    assert len(run.of_type("aws:ec2/natGateway:NatGateway")) == nats
    assert len(run.of_type("aws:ec2/eip:Eip")) == nats
    routes = [r for r in run.of_type("aws:ec2/routeTable:RouteTable") if "-private-" in r.name]
    assert len(routes) == run.config.network.az_count
    assert len({r.inputs["routes"][0]["natGatewayId"] for r in routes}) == nats


def test_subnets_carry_the_tags_load_balancers_discover() -> None:
    run = stack_run("dev")
    for subnet in run.of_type(SUBNET):
        role = "kubernetes.io/role/elb" if "-public-" in subnet.name else "kubernetes.io/role/internal-elb"
        assert subnet.inputs["tags"][role] == "1"
        assert subnet.inputs.get("mapPublicIpOnLaunch") in (None, False)


# --- cluster ------------------------------------------------------------------------------


def test_cluster_settings_follow_config() -> None:
    run = stack_run("prod")
    cluster = run.named("aws:eks/cluster:Cluster", "eks").inputs
    assert cluster["version"] == run.config.cluster.version
    assert cluster["enabledClusterLogTypes"] == list(run.config.cluster.log_types)
    assert cluster["vpcConfig"]["endpointPrivateAccess"] is True
    assert cluster["vpcConfig"]["endpointPublicAccess"] is True
    assert cluster["vpcConfig"]["publicAccessCidrs"] == run.config.cluster.public_access_cidrs
    assert cluster["accessConfig"]["authenticationMode"] == "API"
    assert cluster["encryptionConfig"]["resources"] == ["secrets"]
    key = run.named("aws:kms/key:Key", "eks-secrets").inputs
    assert key["enableKeyRotation"] is True


def test_private_endpoint_only() -> None:
    def private(raw: dict[str, Any]) -> None:
        raw["django-eks:cluster"]["endpointPublicAccess"] = False

    cluster = run_edited(private).named("aws:eks/cluster:Cluster", "eks").inputs
    assert cluster["vpcConfig"]["endpointPublicAccess"] is False
    assert "publicAccessCidrs" not in cluster["vpcConfig"]


def test_core_addons_are_managed_and_ordered_around_the_nodes() -> None:
    run = stack_run("dev")
    addons = {a.inputs["addonName"]: a for a in run.of_type("aws:eks/addon:Addon")}
    assert set(addons) == {"vpc-cni", "kube-proxy", "coredns", "eks-pod-identity-agent", "metrics-server"}
    groups = {g.urn for g in run.of_type(NODE_GROUP)}
    assert groups <= set(addons["coredns"].dependencies)
    assert not groups & set(addons["vpc-cni"].dependencies)
    pool = run.named("django-eks:platform:NodePool", "eks-default")
    assert addons["vpc-cni"].urn in pool.dependencies


# --- load balancer ------------------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_alb_is_public_with_the_configured_idle_timeout(stack: str) -> None:
    run = stack_run(stack)
    alb = run.named(ALB, "web-alb").inputs
    assert alb["idleTimeout"] == run.config.load_balancer.idle_timeout_seconds
    assert alb["internal"] is False
    assert set(alb["subnets"]) == subnet_ids(run, "public")
    target_group = run.named("aws:lb/targetGroup:TargetGroup", "web-tg").inputs
    assert target_group["targetType"] == "ip"
    assert target_group["port"] == 8000
    assert target_group["healthCheck"]["path"] == "/healthz"


def test_without_a_certificate_the_alb_serves_plain_http() -> None:
    (listener,) = [r for r in stack_run("dev").of_type(LISTENER) if r.inputs["port"] != STANDBY_PORT]
    assert (listener.inputs["port"], listener.inputs["protocol"]) == (80, "HTTP")
    assert listener.inputs["defaultActions"][0]["type"] == "forward"
    assert stack_run("dev").outputs["appUrl"].startswith("http://")


def test_with_a_certificate_https_serves_and_http_redirects() -> None:
    def with_cert(raw: dict[str, Any]) -> None:
        raw["django-eks:loadBalancer"]["certificateArn"] = CERT
        raw["django-eks:loadBalancer"]["domainName"] = "app.example.com"

    run = run_edited(with_cert)
    listeners = {r.inputs["port"]: r.inputs for r in run.of_type(LISTENER)}
    assert listeners[443]["protocol"] == "HTTPS"
    assert listeners[443]["certificateArn"] == CERT
    assert listeners[443]["defaultActions"][0]["type"] == "forward"
    assert listeners[80]["defaultActions"][0]["redirect"]["protocol"] == "HTTPS"
    assert run.outputs["appUrl"] == "https://app.example.com"
    ports = sorted(r.inputs["fromPort"] for r in run.of_type(INGRESS) if r.inputs.get("cidrIpv4"))
    assert ports == [80, 443]


# --- security groups ----------------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_only_the_alb_is_open_to_the_internet_and_only_on_http_ports(stack: str) -> None:
    run = stack_run(stack)
    alb_group = "web-alb-placeholder-id"
    for group in run.of_type("aws:ec2/securityGroup:SecurityGroup"):
        for rule in group.inputs.get("ingress", []):
            assert "0.0.0.0/0" not in rule.get("cidrBlocks", [])
    for rule in run.of_type(INGRESS):
        if rule.inputs.get("cidrIpv4") == "0.0.0.0/0" or rule.inputs.get("cidrIpv6") == "::/0":
            assert rule.inputs["securityGroupId"] == alb_group
            assert rule.inputs["fromPort"] == rule.inputs["toPort"]
            assert rule.inputs["fromPort"] in (80, 443)
    (egress,) = run.of_type(EGRESS)
    assert egress.inputs["securityGroupId"] == alb_group
    assert (egress.inputs["fromPort"], egress.inputs["toPort"]) == (8000, 8000)
    assert egress.inputs["referencedSecurityGroupId"] == "sg-placeholder-cluster"


@pytest.mark.parametrize(("group", "port"), [("redis-sg", 6379), ("postgres-sg", 5432)])
def test_data_stores_admit_only_the_cluster_on_their_port(group: str, port: int) -> None:
    run = stack_run("prod")
    rules = [r for r in run.of_type(INGRESS) if r.inputs["securityGroupId"] == f"{group}-placeholder-id"]
    assert [(r.inputs["fromPort"], r.inputs["toPort"], r.inputs["referencedSecurityGroupId"]) for r in rules] == [
        (port, port, "sg-placeholder-cluster")
    ]


# --- redis and postgres -------------------------------------------------------------------


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


@pytest.mark.parametrize("stack", STACKS)
def test_postgres_is_private_encrypted_and_sized_from_config(stack: str) -> None:
    run = stack_run(stack)
    db = run.named(RDS, "postgres").inputs
    config = run.config.database
    assert db["instanceClass"] == config.instance_class
    assert db["multiAz"] is config.multi_az
    assert db["allocatedStorage"] == config.storage_gib
    assert db["deletionProtection"] is config.deletion_protection
    assert db["backupRetentionPeriod"] == config.backup_retention_days
    assert db["storageEncrypted"] is True
    assert db["publiclyAccessible"] is False
    assert is_secret(db["password"])
    subnets = run.named("aws:rds/subnetGroup:SubnetGroup", "postgres-subnets").inputs
    assert set(subnets["subnetIds"]) == subnet_ids(run, "private")


def test_prod_database_is_multi_az_and_protected() -> None:
    db = stack_run("prod").named(RDS, "postgres").inputs
    assert db["multiAz"] is True and db["deletionProtection"] is True
    assert db["skipFinalSnapshot"] is False


# --- registry -------------------------------------------------------------------------------


def test_image_registry_scans_on_push_and_expires_untagged_images() -> None:
    run = stack_run("dev")
    repo = run.named("aws:ecr/repository:Repository", "service").inputs
    assert repo["imageScanningConfiguration"] == {"scanOnPush": True}
    assert repo["imageTagMutability"] == "IMMUTABLE"
    policy = json.loads(run.named("aws:ecr/lifecyclePolicy:LifecyclePolicy", "service-lifecycle").inputs["policy"])
    assert {rule["selection"]["tagStatus"] for rule in policy["rules"]} == {"untagged"}
