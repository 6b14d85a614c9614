"""The app namespace's NetworkPolicies: valid objects, and exactly the flows the app needs.

The pods' only AWS API is S3 (uploads and results), reached through the VPC's S3 gateway
endpoint: its route's destination is the region's S3 prefix list, so S3's addresses are that
list's CIDRs (https://docs.aws.amazon.com/vpc/latest/privatelink/gateway-endpoints.html). Their
credentials come from the node's Pod Identity agent (169.254.170.23), not STS
(https://docs.aws.amazon.com/eks/latest/userguide/pod-id-how-it-works.html), and images are
pulled by the kubelet on the node, which no NetworkPolicy selects. So 443 is open to the S3
prefix list's CIDRs only.

`allowed` evaluates NetworkPolicy v1 semantics (a pod selected by no policy of a direction is
open in that direction; a selected pod admits only what some rule of a selecting policy
allows; a connection needs the sender's egress and the receiver's ingress) over the rendered
policies, for pods and addresses placed in the stack's own subnets.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

import kubernetes_validate
import pytest

from stack.config.model import StackConfig
from stack.config.names import MIGRATE, NAMESPACE, WEB, WORKER
from stack.platform.network import subnet_layout
from stack.tools.offline import S3_PREFIX_LIST_CIDRS
from stack.workloads import pods
from stack.workloads.benchmark import BENCHMARK
from stack.workloads.network_policies import network_policies, s3_prefix_list_name
from stack.workloads.reconciler import RECONCILER
from tests.infra.support.stack_files import stack_run


@dataclass(frozen=True)
class Endpoint:
    name: str
    ip: str
    namespace: str | None = None
    """None for anything outside the cluster's pods (ALB, data stores, AWS APIs)."""
    labels: dict[str, str] = field(default_factory=dict)


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        present = labels.get(expression["key"])
        if expression["operator"] == "In" and present not in expression["values"]:
            return False
        if expression["operator"] == "NotIn" and present in expression["values"]:
            return False
        if expression["operator"] == "Exists" and present is None:
            return False
        if expression["operator"] == "DoesNotExist" and present is not None:
            return False
    return True


def _peer_matches(peer: dict[str, Any], other: Endpoint, policy_namespace: str) -> bool:
    if "ipBlock" in peer:
        address = ipaddress.ip_address(other.ip)
        block = peer["ipBlock"]
        return address in ipaddress.ip_network(block["cidr"]) and not any(
            address in ipaddress.ip_network(e) for e in block.get("except", [])
        )
    if other.namespace is None:
        return False
    namespace_labels = {"kubernetes.io/metadata.name": other.namespace}
    if "namespaceSelector" in peer:
        if not _selects(peer["namespaceSelector"], namespace_labels):
            return False
    elif other.namespace != policy_namespace:
        return False
    return _selects(peer.get("podSelector", {}), other.labels)


def _port_matches(rule: dict[str, Any], port: int, protocol: str) -> bool:
    ports = rule.get("ports")
    return not ports or any(p.get("protocol", "TCP") == protocol and p["port"] == port for p in ports)


def _direction_allows(
    policies: list[dict[str, Any]], pod: Endpoint, other: Endpoint, port: int, protocol: str, direction: str
) -> bool:
    if pod.namespace is None:
        return True  # not a pod these policies could select
    key, peers = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    selecting = [
        p for p in policies
        if p["metadata"]["namespace"] == pod.namespace
        and direction in p["spec"]["policyTypes"]
        and _selects(p["spec"]["podSelector"], pod.labels)
    ]
    if not selecting:
        return True
    return any(
        _port_matches(rule, port, protocol)
        and (peers not in rule or any(_peer_matches(peer, other, p["metadata"]["namespace"]) for peer in rule[peers]))
        for p in selecting
        for rule in p["spec"].get(key, [])
    )


def allowed(
    policies: list[dict[str, Any]], source: Endpoint, target: Endpoint, port: int, protocol: str = "TCP"
) -> bool:
    return _direction_allows(policies, source, target, port, protocol, "Egress") and _direction_allows(
        policies, target, source, port, protocol, "Ingress"
    )


def _host(cidr: str, n: int) -> str:
    return str(ipaddress.ip_network(cidr)[n])


@pytest.fixture
def world(prod_config: StackConfig) -> dict[str, Endpoint]:
    layout = subnet_layout(prod_config.network.cidr, prod_config.network.az_count)
    private, public = layout.private, layout.public

    def pod(name: str, component: str, n: int) -> Endpoint:
        return Endpoint(name, _host(private[n % len(private)], 10 + n), NAMESPACE, pods.labels(component))

    return {
        "alb": Endpoint("alb", _host(public[1], 20)),
        "internet": Endpoint("internet", "203.0.113.7"),
        "web": pod("web", WEB, 0),
        "worker": pod("worker", WORKER, 1),
        "migrate": pod("migrate", MIGRATE, 2),
        "benchmark": pod("benchmark", BENCHMARK, 0),
        "reconciler": pod("reconciler", RECONCILER, 1),
        "coredns": Endpoint("coredns", _host(private[0], 99), "kube-system", {"k8s-app": "kube-dns"}),
        "other-kube-system": Endpoint("metrics", _host(private[1], 98), "kube-system", {"k8s-app": "metrics-server"}),
        "redis": Endpoint("redis", _host(private[1], 200)),
        "postgres": Endpoint("postgres", _host(private[2], 201)),
        # An address of the region's S3 prefix list (as read when the program runs).
        "s3": Endpoint("s3", _host(S3_PREFIX_LIST_CIDRS[1], 77)),
        # Anything else on 443: an AWS API the app does not use (STS), a host on the internet.
        "sts": Endpoint("sts", "52.94.133.131"),
        "internet-https": Endpoint("example.net", "93.184.215.14"),
        "pod-identity-agent": Endpoint("eks-pod-identity-agent", "169.254.170.23"),
    }


def test_every_policy_validates_against_the_cluster_schema(stack_config: StackConfig) -> None:
    for policy in network_policies(stack_config, s3_cidrs=S3_PREFIX_LIST_CIDRS):
        kubernetes_validate.validate(policy, f"{stack_config.cluster.version}.0", strict=True)


def test_the_namespace_denies_by_default(prod_config: StackConfig) -> None:
    (deny,) = [p for p in network_policies(prod_config, s3_cidrs=S3_PREFIX_LIST_CIDRS) if p["metadata"]["name"] == "default-deny"]
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}


ALLOWED = [
    ("alb", "web", 8000, "TCP"),
    ("web", "coredns", 53, "UDP"),
    ("web", "coredns", 53, "TCP"),
    ("worker", "coredns", 53, "UDP"),
    ("worker", "coredns", 53, "TCP"),
    ("web", "redis", 6379, "TCP"),
    ("worker", "redis", 6379, "TCP"),
    ("web", "postgres", 5432, "TCP"),
    ("worker", "postgres", 5432, "TCP"),
    ("web", "s3", 443, "TCP"),
    ("worker", "s3", 443, "TCP"),
    # The pods' AWS credentials (the files bucket) come from the node's Pod Identity agent.
    ("web", "pod-identity-agent", 80, "TCP"),
    ("worker", "pod-identity-agent", 80, "TCP"),
    ("migrate", "coredns", 53, "UDP"),
    ("migrate", "postgres", 5432, "TCP"),
    # The migration that moved existing jobs' files into the bucket.
    ("migrate", "s3", 443, "TCP"),
    ("migrate", "pod-identity-agent", 80, "TCP"),
    # The reconciler re-enqueues (Redis), updates jobs (PostgreSQL), expires files (S3).
    ("reconciler", "coredns", 53, "UDP"),
    ("reconciler", "redis", 6379, "TCP"),
    ("reconciler", "postgres", 5432, "TCP"),
    ("reconciler", "s3", 443, "TCP"),
    ("reconciler", "pod-identity-agent", 80, "TCP"),
    # The benchmark Job runs the app against the stack's own data stores.
    ("benchmark", "coredns", 53, "UDP"),
    ("benchmark", "redis", 6379, "TCP"),
    ("benchmark", "postgres", 5432, "TCP"),
]
DENIED = [
    ("internet", "web", 8000, "TCP"),  # only through the ALB
    ("alb", "web", 22, "TCP"),
    ("alb", "worker", 8000, "TCP"),  # nothing into workers
    ("web", "worker", 8000, "TCP"),
    ("web", "worker", 6379, "TCP"),  # a pod in the private subnets is not a data store
    ("worker", "web", 8000, "TCP"),
    ("migrate", "web", 8000, "TCP"),
    ("web", "other-kube-system", 53, "UDP"),  # DNS means CoreDNS only
    ("web", "s3", 80, "TCP"),
    # Egress on 443 ends at S3: no other AWS API, no host on the internet (a compromised pod
    # cannot fetch a payload or talk to a command server).
    ("web", "sts", 443, "TCP"),
    ("worker", "sts", 443, "TCP"),
    ("web", "internet-https", 443, "TCP"),
    ("worker", "internet-https", 443, "TCP"),
    ("migrate", "internet-https", 443, "TCP"),
    ("reconciler", "internet-https", 443, "TCP"),
    ("benchmark", "internet-https", 443, "TCP"),
    ("worker", "internet", 25, "TCP"),
    ("migrate", "redis", 6379, "TCP"),
    ("web", "pod-identity-agent", 22, "TCP"),
    ("migrate", "pod-identity-agent", 22, "TCP"),
    ("alb", "benchmark", 8000, "TCP"),
    ("alb", "reconciler", 8000, "TCP"),
]


@pytest.mark.parametrize(("source", "target", "port", "protocol"), ALLOWED)
def test_the_flows_the_app_needs_are_allowed(
    world: dict[str, Endpoint], prod_config: StackConfig, source: str, target: str, port: int, protocol: str
) -> None:
    assert allowed(network_policies(prod_config, s3_cidrs=S3_PREFIX_LIST_CIDRS), world[source], world[target], port, protocol)


@pytest.mark.parametrize(("source", "target", "port", "protocol"), DENIED)
def test_every_other_flow_is_denied(
    world: dict[str, Endpoint], prod_config: StackConfig, source: str, target: str, port: int, protocol: str
) -> None:
    assert not allowed(network_policies(prod_config, s3_cidrs=S3_PREFIX_LIST_CIDRS), world[source], world[target], port, protocol)


def test_without_the_policies_everything_flows(world: dict[str, Endpoint]) -> None:
    # The evaluator is not the one denying: with no policies every denied flow passes.
    for source, target, port, protocol in DENIED:
        assert allowed([], world[source], world[target], port, protocol)


def test_policies_are_registered_before_any_pod() -> None:
    run = stack_run("prod")
    policies = run.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")
    assert {p.inputs["metadata"]["name"] for p in policies} == {
        p["metadata"]["name"] for p in network_policies(run.config, s3_cidrs=S3_PREFIX_LIST_CIDRS)
    }
    urns = {p.urn for p in policies}
    for kind in ("kubernetes:apps/v1:Deployment", "kubernetes:batch/v1:Job"):
        for workload in run.of_type(kind):
            assert urns <= set(workload.dependencies), workload.name


def test_an_empty_prefix_list_is_refused_not_read_as_open_to_all(prod_config: StackConfig) -> None:
    """NetworkPolicy v1: an egress rule whose `to` is empty or missing "matches all destinations"
    (k8s.io/api networking/v1 types.go, NetworkPolicyEgressRule.To)."""
    with pytest.raises(ValueError, match="S3 prefix list has no CIDRs"):
        network_policies(prod_config, s3_cidrs=[])


def test_the_registered_policies_carry_the_region_s_s3_prefix_list() -> None:
    # The offline account answers only the name com.amazonaws.<region>.s3, so these CIDRs
    # reaching the policy also show that the program asked for the region's S3 list.
    run = stack_run("prod")
    assert s3_prefix_list_name(run.region) == f"com.amazonaws.{run.region}.s3"
    (egress,) = [
        p for p in run.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")
        if p.inputs["metadata"]["name"] == f"{WEB}-egress"
    ]
    on_443 = [rule for rule in egress.inputs["spec"]["egress"] if {"protocol": "TCP", "port": 443} in rule.get("ports", [])]
    assert [sorted(peer["ipBlock"]["cidr"] for peer in rule["to"]) for rule in on_443] == [sorted(S3_PREFIX_LIST_CIDRS)]
