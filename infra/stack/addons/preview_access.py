"""The preview principals' access: the guard and grants of `stack.addons.preview_grants`, then
the principals' EKS access entries (`cluster.access.previewPrincipalArns`).

The objects are created by the deploy (admin) principal, before the previewers' access entries:
nobody is in the group until the guard and the grants exist, and on destroy the entries go
first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from stack.addons.preview_grants import (
    APP_ROLE,
    HELM_NAMESPACES,
    HELM_STORAGE_ROLE,
    PREVIEWERS_GROUP,
    admission_policy,
    admission_policy_binding,
    app_role,
    cluster_role,
    cluster_role_binding,
    helm_storage_role,
    role_binding,
)
from stack.config.model import ClusterAccessConfig
from stack.config.names import NAMESPACE as APP_NAMESPACE
from stack.platform.cluster_access import AccessGrant

TYPE = "django-eks:platform:PreviewAccess"


def entry_resource_name(name: str, principal_arn: str) -> str:
    """Stable per principal, as the admins' and viewers' entries (`stack.platform.cluster_access.AccessGrant`)."""
    return f"{name}-{AccessGrant(principal_arn, 'preview').resource_suffix}"


def former_view_entry_name(cluster_name: str, principal_arn: str) -> str:
    """The name `stack.platform.cluster.Cluster` gives the entry of the same principal as a viewer.

    EKS allows one access entry per principal, and Pulumi creates a new resource before it
    deletes an old one: moving a principal from viewPrincipalArns to previewPrincipalArns as
    two resources would fail with ResourceInUseException. The preview entry therefore carries
    the viewer entry's name as an alias (the engine then updates the entry in place: its
    Kubernetes groups change, UpdateAccessEntry) and the View association is deleted.
    """
    return f"{cluster_name}-{AccessGrant(principal_arn, 'view').resource_suffix}"


@dataclass(frozen=True)
class PreviewAccessArgs:
    access: ClusterAccessConfig
    cluster_name: pulumi.Input[str]
    provider: k8s.Provider
    app_namespace: pulumi.Input[str] | None
    """The app's namespace as an Output of its Namespace (None when the stack has no app yet)."""
    depends_on: Sequence[pulumi.Resource] = ()
    """The Helm releases (their namespaces must exist before the bindings in them)."""
    tags: Mapping[str, str] | None = None
    cluster: pulumi.Resource | None = None
    """The `Cluster` component (resource name `cluster_resource_name`), parent of the entries the
    principals had as viewers: aliases make a move from viewer to previewer an update."""
    cluster_resource_name: str = "eks"


class PreviewAccess(pulumi.ComponentResource):
    """The guard, the grants, then the previewers' access entries."""

    entries: list[aws.eks.AccessEntry]

    def __init__(
        self, name: str, args: PreviewAccessArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(TYPE, name, None, opts)

        def on_cluster(*after: pulumi.Resource) -> pulumi.ResourceOptions:
            return pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=list(after))

        policy_manifest = admission_policy()
        policy = k8s.admissionregistration.v1.ValidatingAdmissionPolicy(
            f"{name}-policy",
            metadata=policy_manifest["metadata"],
            spec=policy_manifest["spec"],
            opts=on_cluster(),
        )
        binding_manifest = admission_policy_binding()
        guard = k8s.admissionregistration.v1.ValidatingAdmissionPolicyBinding(
            f"{name}-policy-binding",
            metadata=binding_manifest["metadata"],
            spec=binding_manifest["spec"],
            opts=on_cluster(policy),
        )
        # Every grant comes after the guard: no moment where the group may write for real.
        grants: list[pulumi.Resource] = []
        for role in (cluster_role(), app_role(), helm_storage_role()):
            grants.append(
                k8s.rbac.v1.ClusterRole(
                    f"{name}-{role['metadata']['name'].split(':')[-1]}",
                    metadata=role["metadata"],
                    rules=role["rules"],
                    opts=on_cluster(guard),
                )
            )
        crb = cluster_role_binding()
        grants.append(
            k8s.rbac.v1.ClusterRoleBinding(
                f"{name}-binding",
                metadata=crb["metadata"],
                role_ref=crb["roleRef"],
                subjects=crb["subjects"],
                opts=on_cluster(guard, *grants),
            )
        )
        roles = list(grants)
        for namespace in HELM_NAMESPACES:
            rb = role_binding(HELM_STORAGE_ROLE, namespace)
            grants.append(
                k8s.rbac.v1.RoleBinding(
                    f"{name}-helm-storage-{namespace}",
                    metadata=rb["metadata"],
                    role_ref=rb["roleRef"],
                    subjects=rb["subjects"],
                    opts=on_cluster(guard, *roles, *args.depends_on),
                )
            )
        if args.app_namespace is not None:
            rb = role_binding(APP_ROLE, APP_NAMESPACE)
            grants.append(
                k8s.rbac.v1.RoleBinding(
                    f"{name}-app",
                    # The namespace as an Output of the Namespace: created after it, deleted
                    # before it.
                    metadata=cast(Any, {**rb["metadata"], "namespace": args.app_namespace}),
                    role_ref=rb["roleRef"],
                    subjects=rb["subjects"],
                    opts=on_cluster(guard, *roles),
                )
            )

        self.entries = [
            aws.eks.AccessEntry(
                entry_resource_name(name, arn),
                cluster_name=args.cluster_name,
                principal_arn=arn,
                type="STANDARD",
                kubernetes_groups=[PREVIEWERS_GROUP],
                tags=dict(args.tags or {}),
                opts=pulumi.ResourceOptions(
                    parent=self,
                    depends_on=[policy, guard, *grants],
                    aliases=(
                        [
                            pulumi.Alias(
                                name=former_view_entry_name(args.cluster_resource_name, arn),
                                parent=args.cluster,
                            )
                        ]
                        if args.cluster is not None
                        else None
                    ),
                ),
            )
            for arn in args.access.preview_principal_arns
        ]
        self.register_outputs({})


def preview_access(name: str, args: PreviewAccessArgs) -> PreviewAccess | None:
    """The preview principals' access, or nothing when the stack lists none."""
    if not args.access.preview_principal_arns:
        return None
    return PreviewAccess(name, args)
