"""The app running in the cluster: Django (gunicorn) and Celery, migrations, autoscaling, and
the AWS Load Balancer Controller that registers the web pods in the platform's target group."""

from __future__ import annotations

from typing import Any

from stack.config.model import StackConfig
from stack.workloads.component import Workloads, WorkloadsArgs
from stack.workloads import queue_scaling
from stack.workloads.manifests import PLACEHOLDER_SECRETS, app_manifests
from stack.workloads.network_policies import network_policies

__all__ = ["Workloads", "WorkloadsArgs", "rendered_manifests"]


def rendered_manifests(
    config: StackConfig,
    *,
    image: str,
    proxy_image: str,
    alb_dns_name: str,
    app_url: str,
    target_group_arn: str,
    s3_cidrs: list[str],
) -> list[dict[str, Any]]:
    """Every Kubernetes object `Workloads` creates in the app namespace, as plain dicts.

    The Secrets hold placeholders, and the ConfigMap and Secret carry the base of the names
    Pulumi generates for them. The controller's and KEDA's own objects come from their Helm
    charts and are not listed. The ScaledObject watches the broker the app's REDIS_URL names.
    """
    location = queue_scaling.broker_location(PLACEHOLDER_SECRETS["REDIS_URL"])
    namespace, *rest = app_manifests(
        config,
        image=image,
        proxy_image=proxy_image,
        alb_dns_name=alb_dns_name,
        app_url=app_url,
        target_group_arn=target_group_arn,
    )
    return [
        namespace,
        *network_policies(config, s3_cidrs=s3_cidrs),
        *rest,
        queue_scaling.auth_secret(queue_scaling.PLACEHOLDER_TOKEN),
        queue_scaling.trigger_authentication(),
        queue_scaling.scaled_object(config, location),
    ]
