"""The `ClusterAddons` component: the cluster add-ons installed with Helm, and the node groups'
autoscaling tags and bounds.

The add-ons are KEDA, the Cluster Autoscaler and the AWS Load Balancer Controller, each through
`stack.addons.helm.helm_release`. Order, both ways:

    create:   node groups -> ASG tags, IAM, Pod Identity -> KEDA, Cluster Autoscaler
              -> load balancer controller (IAM, Pod Identity, Helm) -> the app
    destroy:  the app (its ScaledObject, its TargetGroupBinding) -> the controller
              -> KEDA, Cluster Autoscaler -> node groups

The app's objects depend on `ready` (see `program.py`), so its ScaledObject is deleted while
KEDA still runs (KEDA removes the HPA it made and the finalizer), and no autoscaler is left
to add nodes for pods that are being deleted; the autoscalers depend on the node groups, so
they go before them. The app's TargetGroupBinding, Service and pods depend on
`load_balancer_controller` (see `stack.workloads.component.DEPENDENCIES`): the binding is
deleted while the controller still runs to remove its finalizer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from stack.addons import cluster_autoscaler as ca
from stack.addons import keda
from stack.addons import load_balancer_controller as lbc
from stack.addons.helm import helm_release
from stack.platform.node_group_scaling import NodeGroupScaling
from stack.model.pod_requests import system_pool
from stack.config.model import StackConfig

TYPE = "django-eks:platform:Autoscalers"
"""Part of the URN of every resource here, in every deployed stack's state: kept as it was when
the component held only the autoscalers (a new type would need an alias on each child)."""

LOAD_BALANCER_CONTROLLER = "app-lb-controller"
"""The controller's resource name, from when the app component (`app`) installed it: the IAM
role and policy are named after it, so a new name would replace them."""

FORMER_CONTROLLER_PARENT = pulumi.create_urn("app", "django-eks:app:Workloads")
"""The URN of the app component (`stack.workloads.component.TYPE`, named `app` by the program),
the controller's parent until it moved here. The controller's resources carry an alias to their
old URN under it, so `pulumi up` moves them in the state instead of replacing them (the engine
matches a resource's old state by alias URN: pulumi/pulumi pkg/resource/deploy/step_generator.go
`generateAliases`)."""


@dataclass(frozen=True)
class ClusterAddonsArgs:
    config: StackConfig
    cluster_name: str
    """The EKS cluster's name, known before it exists: IAM scoping and tags are built from it."""
    cluster: pulumi.Input[str]
    """The cluster's name as an Output of the cluster, so nothing here starts before it."""
    provider: k8s.Provider
    node_groups: Mapping[str, aws.eks.NodeGroup]
    """By pool name."""
    vpc_id: pulumi.Input[str]
    """Where the load balancer controller registers targets (its pods cannot ask the metadata
    service: IMDSv2 with a hop limit of 1)."""
    depends_on: Sequence[pulumi.Resource] = ()
    """Node groups and EKS add-ons: the Helm add-ons come after them and are destroyed before them."""
    with_load_balancer_controller: bool = True
    """False on a stack without the app yet (no image): nothing needs the controller before the
    app's TargetGroupBinding."""


def auto_scaling_group_name(node_group: aws.eks.NodeGroup) -> pulumi.Output[str]:
    def first(resources: Any) -> str:
        groups = [g for r in resources or [] for g in (r.autoscaling_groups or [])]
        if not groups or not groups[0].name:
            raise ValueError("the managed node group reports no Auto Scaling group")
        return str(groups[0].name)

    return node_group.resources.apply(first)


def tag_resource_name(prefix: str, pool: str, key: str) -> str:
    # Tag keys hold "/" and run long; a digest keeps the resource name short and stable.
    return f"{prefix}-{pool}-{hashlib.sha256(key.encode()).hexdigest()[:10]}"


class ClusterAddons(pulumi.ComponentResource):
    ready: list[pulumi.Resource]
    """The autoscalers: what the app's objects must come after (and be destroyed before)."""
    load_balancer_controller: list[pulumi.Resource]
    """The controller's release, ready once its webhooks answer (none without the app)."""

    def __init__(self, name: str, args: ClusterAddonsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TYPE, name, None, opts)
        config = args.config
        system = system_pool(config)

        # --- Auto Scaling group tags: discovery, and the node template for scale-from-zero ---
        tags: list[pulumi.Resource] = []
        for pool_name, node_group in args.node_groups.items():
            group = auto_scaling_group_name(node_group)
            pool = config.node_pools[pool_name]
            for key, value in ca.auto_scaling_group_tags(args.cluster_name, pool_name, pool).items():
                tags.append(
                    aws.autoscaling.Tag(
                        tag_resource_name(f"{name}-asg", pool_name, key),
                        autoscaling_group_name=group,
                        tag=aws.autoscaling.TagTagArgs(key=key, value=value, propagate_at_launch=False),
                        opts=pulumi.ResourceOptions(parent=self),
                    )
                )

        # --- node group bounds after creation (see node_group_scaling) ---------------------
        for pool_name, node_group in args.node_groups.items():
            pool = config.node_pools[pool_name]
            NodeGroupScaling(
                f"{name}-bounds-{pool_name}",
                region=config.region,
                cluster_name=node_group.cluster_name,
                node_group_name=node_group.node_group_name,
                min_size=pool.min_size,
                max_size=pool.max_size,
                opts=pulumi.ResourceOptions(parent=self),
            )

        # --- Cluster Autoscaler -----------------------------------------------------------
        cluster_autoscaler = helm_release(
            f"{name}-cluster-autoscaler",
            ca.RELEASE,
            values=ca.chart_values(config, cluster_name=args.cluster_name, system_pool=system),
            provider=args.provider,
            parent=self,
            # The tags come first too, or the first discovery sees groups it may not scale.
            depends_on=[*args.depends_on, *tags],
            pod_identity=ca.pod_identity(args.cluster, cluster_name=args.cluster_name, region=config.region),
        )

        # --- KEDA -------------------------------------------------------------------------
        keda_release = helm_release(
            f"{name}-keda",
            keda.RELEASE,
            values=keda.chart_values(config, system),
            provider=args.provider,
            parent=self,
            depends_on=args.depends_on,
            create_namespace=True,
        )

        self.ready = [keda_release, cluster_autoscaler]

        # --- AWS Load Balancer Controller -------------------------------------------------
        self.load_balancer_controller = []
        if args.with_load_balancer_controller:
            values: pulumi.Output[Any] = pulumi.Output.all(args.cluster, args.vpc_id).apply(
                lambda v: lbc.chart_values(cluster_name=str(v[0]), region=config.region, vpc_id=str(v[1]))
            )
            controller = helm_release(
                LOAD_BALANCER_CONTROLLER,
                lbc.RELEASE,
                values=values,
                provider=args.provider,
                parent=self,
                depends_on=[*args.depends_on, *self.ready],
                pod_identity=lbc.pod_identity(args.cluster),
                # Explicitly awaited (Helm's --wait): the release succeeds only once the
                # controller Deployment is ready, i.e. its webhook server answers (readyz
                # "ready-webhook"), before anything the webhooks admit is created.
                await_ready_seconds=600,
                aliases=[pulumi.Alias(parent=FORMER_CONTROLLER_PARENT)],
            )
            self.load_balancer_controller.append(controller)
        self.register_outputs({})
