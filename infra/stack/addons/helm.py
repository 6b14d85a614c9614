"""How every cluster add-on is installed: a pinned Helm chart, and an IAM role if it calls AWS.

Each add-on module (`keda`, `cluster_autoscaler`, `load_balancer_controller`) says what is its
own (the chart pin, its values, its IAM policy); `helm_release` does the rest the same way for
all three: the release is named after its chart, keeps five revisions, runs on the cluster's
provider, and, when the add-on has a Pod Identity role, comes after the role's association
(Pod Identity injects credentials when a pod is created: a pod started before the association
would run without AWS credentials).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from stack.platform.iam import managed_policy_identity

MAX_HISTORY = 5
"""Release revisions Helm keeps (in Secrets of the release's namespace)."""


@dataclass(frozen=True)
class HelmChart:
    """A chart pinned to one version of one repository, installed once, as a release of its name."""

    name: str
    version: str
    repository: str
    namespace: str


@dataclass(frozen=True)
class PodIdentity:
    """The IAM role an add-on's service account gets through EKS Pod Identity (`stack.platform.iam`)."""

    cluster_name: pulumi.Input[str]
    service_account: str
    role_description: str
    policy: pulumi.Input[str]
    """The managed policy's JSON document."""
    policy_description: str


def helm_release(
    resource_name: str,
    chart: HelmChart,
    *,
    values: pulumi.Input[dict[str, Any]],
    provider: k8s.Provider,
    parent: pulumi.Resource,
    depends_on: Sequence[pulumi.Resource] = (),
    pod_identity: PodIdentity | None = None,
    create_namespace: bool | None = None,
    await_ready_seconds: int | None = None,
    aliases: Sequence[pulumi.Alias] | None = None,
) -> k8s.helm.v3.Release:
    """The chart's release, after `depends_on` (and destroyed before it).

    `pod_identity`: the role and its association are created first, under the same resource
    name. `await_ready_seconds`: Helm's --wait with that timeout, said explicitly (the release
    succeeds only once every resource of it is ready); left out, the provider's default holds.
    `aliases` apply to every resource created here.
    """
    after = list(depends_on)
    if pod_identity is not None:
        after.append(
            managed_policy_identity(
                resource_name,
                cluster_name=pod_identity.cluster_name,
                namespace=chart.namespace,
                service_account=pod_identity.service_account,
                role_description=pod_identity.role_description,
                policy=pod_identity.policy,
                policy_description=pod_identity.policy_description,
                parent=parent,
                aliases=aliases,
            )
        )
    return k8s.helm.v3.Release(
        resource_name,
        name=chart.name,
        chart=chart.name,
        version=chart.version,
        repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=chart.repository),
        namespace=chart.namespace,
        create_namespace=create_namespace,
        values=values,
        max_history=MAX_HISTORY,
        skip_await=False if await_ready_seconds is not None else None,
        timeout=await_ready_seconds,
        opts=pulumi.ResourceOptions(
            parent=parent, provider=provider, depends_on=after, aliases=list(aliases) if aliases else None
        ),
    )
