"""How `Workloads` registers the AWS Load Balancer Controller: its IAM role and Pod Identity
association, then its Helm release (the chart's values and policy: stack.addons.load_balancer_controller)."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from stack.addons import load_balancer_controller as lbc
from stack.platform.iam import managed_policy_identity
from stack.workloads.order import Children


def register_load_balancer_controller(
    name: str,
    children: Children,
    *,
    region: str,
    cluster_name: pulumi.Input[str],
    vpc_id: pulumi.Input[str],
) -> None:
    """The controller's Pod Identity (role "pod-identity") and release (role "controller")."""
    association = managed_policy_identity(
        f"{name}-lb-controller",
        cluster_name=cluster_name,
        namespace=lbc.NAMESPACE,
        service_account=lbc.SERVICE_ACCOUNT,
        role_description="AWS Load Balancer Controller (EKS Pod Identity)",
        policy=lbc.compact_json(lbc.iam_policy_document()),
        policy_description="AWS Load Balancer Controller, as published upstream",
        parent=children.parent,
    )
    children.record("pod-identity", association)

    values: pulumi.Output[Any] = pulumi.Output.all(cluster_name, vpc_id).apply(
        lambda v: lbc.chart_values(cluster_name=str(v[0]), region=region, vpc_id=str(v[1]))
    )
    controller = k8s.helm.v3.Release(
        f"{name}-lb-controller",
        name=lbc.CHART,
        chart=lbc.CHART,
        version=lbc.CHART_VERSION,
        repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=lbc.CHART_REPOSITORY),
        namespace=lbc.NAMESPACE,
        values=values,
        max_history=5,
        # Explicitly awaited (Helm's --wait): the release succeeds only once the controller
        # Deployment is ready, i.e. its webhook server answers (readyz "ready-webhook").
        skip_await=False,
        timeout=600,
        opts=children.after("controller"),
    )
    children.record("controller", controller)
