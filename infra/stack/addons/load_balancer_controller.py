"""The AWS Load Balancer Controller: its Helm chart pin, values and AWS identity.

The controller only registers pod IPs into the target group the platform declared
(TargetGroupBinding); it creates no load balancer of its own. It authenticates with EKS Pod
Identity: an IAM role trusted by `pods.eks.amazonaws.com`, associated with its service account.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pulumi

from stack.addons.helm import HelmChart, PodIdentity

CHART = "aws-load-balancer-controller"
CHART_REPOSITORY = "https://aws.github.io/eks-charts"
CHART_VERSION = "3.5.0"
"""Chart 3.5.0 of https://aws.github.io/eks-charts packages controller (appVersion) v3.5.0: the
release the IAM policy and CRDs in data/aws-load-balancer-controller were taken from (upstream
kubernetes-sigs/aws-load-balancer-controller at commit 225f445, see data/SOURCES.md; the chart
is published from that repository's helm/aws-load-balancer-controller directory). Bump the
three together: Helm installs a chart's CRDs on first install only and never upgrades them."""

NAMESPACE = "kube-system"
SERVICE_ACCOUNT = "aws-load-balancer-controller"
RELEASE = HelmChart(name=CHART, version=CHART_VERSION, repository=CHART_REPOSITORY, namespace=NAMESPACE)
REPLICAS = 2

DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "aws-load-balancer-controller"
IAM_POLICY_FILE = DATA_DIR / "iam_policy.json"
CRDS_FILE = DATA_DIR / "crds.yaml"


def chart_values(*, cluster_name: str, region: str, vpc_id: str) -> dict[str, Any]:
    """Helm values for the controller.

    Nodes enforce IMDSv2 with a hop limit of 1, so pods cannot ask the instance metadata
    service for the region or VPC: both are passed explicitly, as is the cluster name.
    """
    return {
        "clusterName": cluster_name,
        "region": region,
        "vpcId": vpc_id,
        # Two replicas (leader election): a node drain never leaves pods unregistered.
        "replicaCount": REPLICAS,
        "podDisruptionBudget": {"maxUnavailable": 1},
        # The chart creates the account; Pod Identity matches it by namespace and name, so it
        # needs no role annotation.
        "serviceAccount": {"create": True, "name": SERVICE_ACCOUNT},
        **WEBHOOK_VALUES,
    }


WEBHOOK_VALUES: dict[str, Any] = {
    # Only the webhooks this design uses stay on: the pod mutator (readiness gates of the web
    # pods) and the TargetGroupBinding mutator and validator. The app has no Service of type
    # LoadBalancer and no Ingress, and a webhook with failurePolicy Fail that nothing needs
    # only adds a way for the API server to refuse writes while the controller is down.
    "enableServiceMutatorWebhook": False,
    "webhookConfig": {"disableIngressValidation": True},
    "createIngressClassResource": False,
    "ingressClassParams": {"create": False},
    # The chart generates the webhook's self-signed certificate at render time; without this
    # every upgrade issues a new one, and until the pods restart with it the API server's
    # calls to the webhooks fail TLS verification. keepTLSSecret reuses the existing Secret
    # (chart 3.5.0 default: false; templates/_helpers.tpl looks the Secret up).
    "keepTLSSecret": True,
}
"""Chart 3.5.0 values (helm/aws-load-balancer-controller/values.yaml at 225f445)."""


def iam_policy_document() -> dict[str, Any]:
    """The controller's IAM policy as published upstream (data/aws-load-balancer-controller)."""
    document: dict[str, Any] = json.loads(IAM_POLICY_FILE.read_text())
    return document


def compact_json(document: dict[str, Any]) -> str:
    # A managed policy may hold at most 6,144 characters; the published file is indented.
    return json.dumps(document, separators=(",", ":"), sort_keys=False)


def pod_identity(cluster: pulumi.Input[str]) -> PodIdentity:
    """The controller's role: the upstream policy, unchanged."""
    return PodIdentity(
        cluster_name=cluster,
        service_account=SERVICE_ACCOUNT,
        role_description="AWS Load Balancer Controller (EKS Pod Identity)",
        policy=compact_json(iam_policy_document()),
        policy_description="AWS Load Balancer Controller, as published upstream",
    )
