"""NetworkPolicies of the app namespace: deny everything, then allow exactly the app's flows.

    into web pods       TCP 8000 from the ALB (its addresses are in the public subnets:
                        target traffic and health checks alike)
    into workers        nothing
    out of web/worker   DNS (CoreDNS, UDP+TCP 53), Redis (TCP 6379) and PostgreSQL (TCP 5432)
                        in the private subnets, AWS APIs (TCP 443, through the NAT gateways:
                        S3 and the rest have no fixed addresses; the S3 gateway endpoint
                        routes to S3's public ranges), and the EKS Pod Identity agent on
                        the node (169.254.170.23, TCP 80), where the pods' AWS SDKs get
                        their credentials
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

from typing import Any

from stack.config import StackConfig
from stack.network import subnet_layout
from stack.workloads.benchmark import BENCHMARK
from stack.workloads.reconciler import RECONCILER
from stack.workloads.manifests import HTTP_PORT, MIGRATE, NAMESPACE, WEB, WORKER, Manifest, labels, selector_labels

REDIS_PORT = 6379
POSTGRES_PORT = 5432
HTTPS_PORT = 443
DNS_PORT = 53
POD_IDENTITY_AGENT = "169.254.170.23/32"
"""The link-local address the eks-pod-identity-agent DaemonSet serves credentials on (port 80):
https://docs.aws.amazon.com/eks/latest/userguide/pod-id-how-it-works.html"""
POD_IDENTITY_AGENT_PORT = 80

DEFAULT_DENY = "default-deny"


def _policy(name: str, pod_selector: dict[str, Any], spec: dict[str, Any]) -> Manifest:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels("network-policy")},
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


def network_policies(config: StackConfig) -> list[Manifest]:
    layout = subnet_layout(config.network.cidr, config.network.az_count)
    data_stores = _cidrs(layout.private)
    aws_apis = [
        {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": _tcp(HTTPS_PORT)},
        {"to": _cidrs([POD_IDENTITY_AGENT]), "ports": _tcp(POD_IDENTITY_AGENT_PORT)},
    ]
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
        *(
            _policy(f"{component}-egress", _pods(component), {"policyTypes": ["Egress"], "egress": app_egress})
            for component in (WEB, WORKER, RECONCILER, BENCHMARK)
        ),
        _policy(
            f"{MIGRATE}-egress",
            _pods(MIGRATE),
            {
                "policyTypes": ["Egress"],
                "egress": [dns_rule(), {"to": data_stores, "ports": _tcp(POSTGRES_PORT)}, *aws_apis],
            },
        ),
    ]
