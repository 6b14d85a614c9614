"""The order in which `Workloads` registers its children, safe both ways:

    create:   namespace, accounts, config, Secret -> (the load balancer controller)
              -> migration Job -> Service, TargetGroupBinding -> Deployments -> web HPA,
              queue auth Secret -> TriggerAuthentication -> worker ScaledObject
    destroy:  the reverse, so the TargetGroupBinding (whose finalizer the controller removes
              after deregistering the targets) is deleted while the controller still runs.
              The controller, KEDA and the Cluster Autoscaler are outside (`stack.addons`):
              every object here comes after them, through `depends_on`, and is destroyed
              before them.

`DEPENDENCIES` spells the order out; `Children` builds every child's `depends_on` from it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pulumi

DEPENDENCIES: Mapping[str, tuple[str, ...]] = {
    "namespace": (),
    # Before any pod, so no pod ever runs unconfined.
    "network-policies": ("namespace",),
    "service-accounts": ("namespace",),
    "config": ("namespace",),
    "secret": ("namespace",),
    # The controller's Helm release (stack.addons.component), awaited with its Pod Identity.
    "controller": (),
    # The controller's webhook mutates pods in the labelled namespace; pods created while it
    # is not running would miss their readiness gate (or be rejected).
    # Its pod writes files into the bucket (jobs/migrations/0003) with the migrate role, which
    # Pod Identity injects at pod creation.
    "migration": ("service-accounts", "config", "secret", "controller", "network-policies", "app-pod-identity"),
    "app-pod-identity": (),
    # After the controller: its Helm release is awaited until the controller Deployment is
    # ready, and its readiness check includes the webhook server having started, so the
    # webhooks answer before anything they admit is created.
    "service": ("namespace", "controller"),
    # Explicit, so destroy deletes the binding before the controller that removes its
    # finalizer; and the CRD only exists once the chart is installed.
    "target-group-binding": ("service", "controller"),
    # The binding must exist when web pods are created, or they get no readiness gate.
    "web": ("migration", "target-group-binding", "controller", "network-policies", "app-pod-identity"),
    "web-autoscaling": ("web",),
    "web-disruption-budget": ("namespace",),
    "worker": ("migration", "controller", "network-policies", "app-pod-identity"),
    "queue-auth-secret": ("namespace",),
    "queue-trigger-authentication": ("queue-auth-secret",),
    # The ScaledObject is deleted first on destroy: KEDA then removes the HPA it made.
    "worker-autoscaling": ("worker", "queue-trigger-authentication"),
    "worker-disruption-budget": ("namespace",),
    # The benchmark submits jobs through the app's tables: after the migrations.
    "benchmark": ("migration",),
    # Its pods run the image's code against the migrated schema; the expiry of the files
    # bucket runs in them with the reconciler's own Pod Identity role.
    "reconciler": ("migration", "network-policies", "app-pod-identity"),
    # Beat publishes the app's periodic tasks: after the migrations, like the workers.
    "beat": ("migration", "network-policies"),
    "cron-jobs": ("migration", "network-policies", "app-pod-identity"),
}
"""For each role, the roles it must come after (and be destroyed before)."""


def dependency_closure(role: str) -> set[str]:
    """Every role `role` comes after, directly or not."""
    seen: set[str] = set()
    pending = list(DEPENDENCIES[role])
    while pending:
        other = pending.pop()
        if other not in seen:
            seen.add(other)
            pending.extend(DEPENDENCIES.get(other, ()))
    return seen


def child_options(
    parent: pulumi.Resource,
    *,
    provider: pulumi.ProviderResource | None,
    depends_on: Sequence[pulumi.Resource],
    custom_timeouts: pulumi.CustomTimeouts | None = None,
) -> pulumi.ResourceOptions:
    """Options of every child: under the component, on the cluster's provider when given."""
    return pulumi.ResourceOptions(
        parent=parent,
        provider=provider,
        depends_on=list(depends_on),
        custom_timeouts=custom_timeouts,
    )


class Children:
    """The children of one component: each registered under a role of `DEPENDENCIES`, with the
    options that make it come after the roles it depends on (and after `depends_on`)."""

    def __init__(
        self,
        parent: pulumi.Resource,
        *,
        provider: pulumi.ProviderResource | None,
        depends_on: Sequence[pulumi.Resource],
    ) -> None:
        self.parent = parent
        self.provider = provider
        self.depends_on = list(depends_on)
        self.created: dict[str, list[pulumi.Resource]] = {}

    def after(self, role: str, **extra: Any) -> pulumi.ResourceOptions:
        """The options of a child of `role`: every resource of the roles it comes after."""
        deps = [*self.depends_on]
        for other in DEPENDENCIES[role]:
            deps.extend(self.created[other])
        return child_options(self.parent, provider=self.provider, depends_on=deps, **extra)

    def record(self, role: str, *resources: pulumi.Resource) -> None:
        """`resources` now stand for `role`: what comes after it waits for them."""
        self.created.setdefault(role, []).extend(resources)
