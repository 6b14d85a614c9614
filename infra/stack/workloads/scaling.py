"""How `Workloads` registers the scaling of its Deployments: the web HPA, the worker's
ScaledObject with the TriggerAuthentication it uses, and a PodDisruptionBudget for each."""

from __future__ import annotations

from functools import partial
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from stack.config.model import StackConfig
from stack.config.names import WORKER
from stack.config.workers import worker_deployments
from stack.workloads import queue_scaling as qs
from stack.workloads.app_config import PLACEHOLDER_SECRETS
from stack.workloads.app_secrets import register_queue_auth_secret
from stack.workloads.order import Children
from stack.workloads.pods import Manifest, pod_disruption_budget
from stack.workloads.worker import worker_selector


def register_scaling(name: str, role: str, hpa: Manifest, children: Children) -> None:
    """The HPA and the PodDisruptionBudget of one Deployment."""
    k8s.autoscaling.v2.HorizontalPodAutoscaler(
        f"{name}-{role}",
        metadata=hpa["metadata"],
        spec=hpa["spec"],
        opts=children.after(f"{role}-autoscaling"),
    )
    register_disruption_budget(name, role, children)


def register_queue_scaling(
    name: str,
    config: StackConfig,
    children: Children,
    *,
    redis_url: pulumi.Input[str],
    redis_auth_token: pulumi.Input[str],
) -> None:
    """Each worker Deployment's ScaledObject and PodDisruptionBudget, and the
    TriggerAuthentication they share with the Secret it reads."""
    register_queue_auth_secret(name, children, redis_auth_token=redis_auth_token)

    auth = qs.trigger_authentication()
    trigger_auth = k8s.apiextensions.CustomResource(
        f"{name}-queue-trigger-auth",
        api_version=auth["apiVersion"],
        kind=auth["kind"],
        metadata=auth["metadata"],
        spec=auth["spec"],
        opts=children.after("queue-trigger-authentication"),
    )
    children.record("queue-trigger-authentication", trigger_auth)

    # The host, port, database and TLS of the URL the workers use, so the scaler watches
    # exactly their broker; the token is not part of them, so they need not stay secret.
    location = pulumi.Output.unsecret(
        pulumi.Output.from_input(redis_url).apply(lambda url: qs.broker_location(str(url)))
    )
    for deployment in worker_deployments(config):
        placeholder_object = qs.scaled_object(
            config, qs.broker_location(PLACEHOLDER_SECRETS["REDIS_URL"]), deployment.name
        )
        k8s.apiextensions.CustomResource(
            f"{name}-{deployment.name}",
            api_version=placeholder_object["apiVersion"],
            kind=placeholder_object["kind"],
            metadata=placeholder_object["metadata"],
            spec=location.apply(partial(_scaled_object_spec, config, name=deployment.name)),
            opts=children.after("worker-autoscaling"),
        )
        register_disruption_budget(
            name, WORKER, children,
            pdb=pod_disruption_budget(WORKER, name=deployment.name, match_labels=worker_selector(deployment)),
        )  # fmt: skip


def _scaled_object_spec(config: StackConfig, where: qs.BrokerLocation, *, name: str) -> Any:
    return qs.scaled_object(config, where, name)["spec"]


def register_disruption_budget(name: str, role: str, children: Children, pdb: Manifest | None = None) -> None:
    """The PDB `pdb` (default: the role's own) under the role's disruption-budget order."""
    pdb = pdb or pod_disruption_budget(role)
    k8s.policy.v1.PodDisruptionBudget(
        f"{name}-{pdb['metadata']['name']}",
        metadata=pdb["metadata"],
        spec=pdb["spec"],
        opts=children.after(f"{role}-disruption-budget"),
    )
