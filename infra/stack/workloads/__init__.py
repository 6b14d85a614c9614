"""The app running in the cluster: Django (gunicorn) and Celery, migrations, autoscaling, and
the AWS Load Balancer Controller that registers the web pods in the platform's target group."""

from __future__ import annotations

from typing import Any

from stack.config import StackConfig
from stack.workloads.component import Workloads, WorkloadsArgs
from stack.workloads.manifests import app_manifests
from stack.workloads.network_policies import network_policies

__all__ = ["Workloads", "WorkloadsArgs", "rendered_manifests"]


def rendered_manifests(
    config: StackConfig,
    *,
    image: str,
    alb_dns_name: str,
    app_url: str,
    target_group_arn: str,
) -> list[dict[str, Any]]:
    """Every Kubernetes object `Workloads` creates in the app namespace, as plain dicts.

    The Secret holds placeholders, and the ConfigMap and Secret carry the base of the names
    Pulumi generates for them. The controller's own objects come from its Helm chart and are
    not listed.
    """
    namespace, *rest = app_manifests(
        config,
        image=image,
        alb_dns_name=alb_dns_name,
        app_url=app_url,
        target_group_arn=target_group_arn,
    )
    return [namespace, *network_policies(config), *rest]
