"""NetworkPolicies of the app namespace: deny everything, then allow exactly the app's flows.

    into web pods       TCP 8000 from the ALB (its addresses are in the public subnets:
                        target traffic and health checks alike)
    into workers        nothing, but:
    metrics             TCP 8001 (web) and 9100 (workers) from the private subnets, where the
                        managed Prometheus collector's network interfaces are (with
                        observability.metrics enabled)
    out of web/worker   DNS (CoreDNS, UDP+TCP 53), Redis (TCP 6379) and PostgreSQL (TCP 5432)
                        in the private subnets, S3 (TCP 443 to the CIDRs of the region's S3
                        prefix list, which the VPC's S3 gateway endpoint routes), and the EKS
                        Pod Identity agent on the node (169.254.170.23, TCP 80), where the pods'
                        AWS SDKs get their credentials. Nothing else: the app's only AWS API is
                        S3 (credentials come from the agent, not STS; images are pulled by the
                        kubelet, not the pods), so no pod reaches the internet.
    out of migrations   DNS, PostgreSQL, and S3 with its credentials (as web and workers): a
                        migration moved the files of existing jobs into the bucket
    out of the reconciler
    and the benchmark   the same as web and workers: the reconciler re-enqueues jobs (Redis),
    Job (if any)        updates them (PostgreSQL) and expires their files (S3); the benchmark
                        runs the app against the stack's Redis and PostgreSQL

The VPC CNI enforces them once its network policy agent runs (`enableNetworkPolicy`, see
cluster.py). The kubelet's HTTP probes of the web pods still pass: the agent always allows
traffic between a pod and its node's IP, whatever the policies (aws/aws-network-policy-agent
PR #65, fixing issue #56; VPC CNI v1.15.1+). The worker's probe runs inside the container.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from stack.config.model import StackConfig
from stack.config.names import BEAT, CRON, MIGRATE, NAMESPACE, PROBE_PORT, WEB, WORKER, WORKER_METRICS_PORT
from stack.platform.network import subnet_layout
from stack.workloads.benchmark import BENCHMARK
from stack.workloads.reconciler import RECONCILER
from stack.workloads.pods import Manifest, labels, selector_labels
from stack.workloads.web import HTTP_PORT

REDIS_PORT = 6379
POSTGRES_PORT = 5432
HTTPS_PORT = 443
DNS_PORT = 53
POD_IDENTITY_AGENT = "169.254.170.23/32"
"""The link-local address the eks-pod-identity-agent DaemonSet serves credentials on (port 80):
https://docs.aws.amazon.com/eks/latest/userguide/pod-id-how-it-works.html"""
POD_IDENTITY_AGENT_PORT = 80

DEFAULT_DENY = "default-deny"


def policy_metadata(name: str) -> dict[str, Any]:
    return {"name": name, "namespace": NAMESPACE, "labels": labels("network-policy")}


def egress_components(config: StackConfig) -> tuple[str, ...]:
    """The pod kinds that reach the data stores: the demo's reconciler and benchmark only where
    the demo is the app."""
    return (WEB, WORKER, RECONCILER, BENCHMARK) if config.app is None else (WEB, WORKER)


def policy_names(config: StackConfig) -> list[str]:
    """The names of `network_policies`, in the same order (they do not depend on the network)."""
    return [
        DEFAULT_DENY,
        f"{WEB}-from-alb",
        *(f"{component}-metrics" for component, _ in metrics_ports(config)),
        *(f"{component}-egress" for component in egress_components(config)),
        f"{MIGRATE}-egress",
        *(f"{component}-egress" for component in optional_components(config)),
    ]


def optional_components(config: StackConfig) -> list[str]:
    """The components only some stacks run: beat, and the cron jobs."""
    return [*([BEAT] if config.beat is not None else []), *([CRON] if config.cron_jobs else [])]


def metrics_ports(config: StackConfig) -> list[tuple[str, int]]:
    """The pod kinds the collector scrapes and their metrics port, when the stack collects metrics."""
    return [(WEB, PROBE_PORT), (WORKER, WORKER_METRICS_PORT)] if config.observability.metrics_enabled else []


def _policy(name: str, pod_selector: dict[str, Any], spec: dict[str, Any]) -> Manifest:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": policy_metadata(name),
        "spec": {"podSelector": pod_selector, **spec},
    }


def _pods(component: str) -> dict[str, Any]:
    return {"matchLabels": selector_labels(component)}


def _tcp(*ports: int) -> list[dict[str, Any]]:
    return [{"protocol": "TCP", "port": port} for port in ports]


def _cidrs(cidrs: list[str]) -> list[dict[str, Any]]:
    return [{"ipBlock": {"cidr": cidr}} for cidr in cidrs]


def dns_rule() -> dict[str, Any]:
    """To CoreDNS in kube-system, UDP and TCP (large answers fall back to TCP)."""
    return {
        "to": [
            {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
            }
        ],
        "ports": [{"protocol": "UDP", "port": DNS_PORT}, {"protocol": "TCP", "port": DNS_PORT}],
    }


def s3_prefix_list_name(region: str) -> str:
    """The AWS-managed prefix list of S3's addresses in `region`: the destination of the routes
    an S3 gateway endpoint adds (https://docs.aws.amazon.com/vpc/latest/privatelink/gateway-endpoints.html)."""
    return f"com.amazonaws.{region}.s3"


def network_policies(config: StackConfig, *, s3_cidrs: Sequence[str]) -> list[Manifest]:
    """The namespace's policies; `s3_cidrs` are the CIDRs of the region's S3 prefix list, read
    when the program runs (AWS adds ranges to it: the next `pulumi up` picks them up)."""
    if not s3_cidrs:
        # An egress rule with an empty `to` list matches every destination (NetworkPolicy v1:
        # "If this field is empty or missing, this rule matches all destinations").
        raise ValueError("the S3 prefix list has no CIDRs: refusing an egress rule open to all")
    layout = subnet_layout(config.network.cidr, config.network.az_count)
    data_stores = _cidrs(layout.private)
    aws_apis = [
        {"to": _cidrs(sorted(s3_cidrs)), "ports": _tcp(HTTPS_PORT)},
        {"to": _cidrs([POD_IDENTITY_AGENT]), "ports": _tcp(POD_IDENTITY_AGENT_PORT)},
    ]
    if config.app is not None and not config.app.uses_files_bucket:
        # No bucket, no AWS credentials (stack.platform.storage): nothing to reach there.
        aws_apis = []
    app_egress = [dns_rule(), {"to": data_stores, "ports": _tcp(REDIS_PORT, POSTGRES_PORT)}, *aws_apis]
    return [
        # Selects every pod of the namespace, allows nothing: whatever is not allowed below
        # (including anything into the workers) is dropped.
        _policy(DEFAULT_DENY, {}, {"policyTypes": ["Ingress", "Egress"]}),
        _policy(
            f"{WEB}-from-alb",
            _pods(WEB),
            {
                "policyTypes": ["Ingress"],
                "ingress": [{"from": _cidrs(layout.public), "ports": _tcp(HTTP_PORT)}],
            },
        ),
        # The managed collector scrapes from its network interfaces in the private subnets
        # (https://docs.aws.amazon.com/prometheus/latest/userguide/AMP-collector.html: "creates an
        # Elastic Network Interface (ENI) per subnet specified"): the metrics port only.
        *(
            _policy(
                f"{component}-metrics",
                _pods(component),
                {"policyTypes": ["Ingress"], "ingress": [{"from": _cidrs(layout.private), "ports": _tcp(port)}]},
            )
            for component, port in metrics_ports(config)
        ),
        *(
            _policy(f"{component}-egress", _pods(component), {"policyTypes": ["Egress"], "egress": app_egress})
            for component in egress_components(config)
        ),
        _policy(
            f"{MIGRATE}-egress",
            _pods(MIGRATE),
            {
                "policyTypes": ["Egress"],
                "egress": [dns_rule(), {"to": data_stores, "ports": _tcp(POSTGRES_PORT)}, *aws_apis],
            },
        ),
        *(
            _policy(f"{component}-egress", _pods(component), {"policyTypes": ["Egress"], "egress": egress})
            for component, egress in (
                # Beat publishes to the broker and may read its schedule from the database; it
                # has no AWS role.
                (BEAT, [dns_rule(), {"to": data_stores, "ports": _tcp(REDIS_PORT, POSTGRES_PORT)}]),
                # A management command runs as the workers do, with their role.
                (CRON, app_egress),
            )
            if component in optional_components(config)
        ),
    ]
