"""What the preview principals may do: server-side dry runs of what an update would do, no real write.

pulumi-kubernetes previews a Kubernetes create as a POST with `dryRun=All`, and an update as a
GET followed by a server-side-apply PATCH with `dryRun=All`. Kubernetes authorizes a dry run
exactly like the real request (https://kubernetes.io/docs/reference/using-api/api-concepts/
#dry-run-authorization), so a principal whose RBAC lets it preview could, as far as RBAC goes,
also write. What keeps it to dry runs is admission, which sees whether a request is one:

- EKS access entries (`cluster.access.previewPrincipalArns`) put those principals in the
  Kubernetes group `PREVIEWERS_GROUP`, with no EKS access policy: everything they may do comes
  from the RBAC below.
- RBAC (ClusterRoles bound to the group) grants the reads and the dry-run verbs a preview
  issues (`create`, `patch`) on exactly the kinds and namespaces the program manages itself,
  and `list`/`get` on Secrets where the Helm releases keep their state. It grants no
  subresource (so no `pods/exec`, `pods/attach`, `pods/portforward`, `*/proxy`), no `delete`,
  no `escalate`/`bind`/`impersonate`, and no write on admission policies (which no admission
  policy can guard, see below).
- A ValidatingAdmissionPolicy (admissionregistration.k8s.io/v1, GA since Kubernetes 1.30; this
  project allows 1.33-1.35) bound cluster-wide denies every CREATE, UPDATE, DELETE and CONNECT
  by a member of the group unless `request.dryRun` is true. Its failure policy is Fail, so an
  evaluation error denies too.

Admission never sees reads: what the group may read, it reads (the stack's Secrets included:
a dry-run apply of a Secret returns its data anyway). Kubernetes exempts ValidatingAdmission-
Policies and their bindings from API-defined admission policies (apiserver
`admission/plugin/policy/generic/plugin.go`, `admissionResources`), which is why the group may
only read those.

The component that creates these objects, and the access entries, is `stack.addons.preview_access`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from stack.addons import cluster_autoscaler, keda, load_balancer_controller
from stack.config.names import NAMESPACE as APP_NAMESPACE

Manifest = dict[str, Any]

PREVIEWERS_GROUP = "django-eks:previewers"
"""The Kubernetes group of the preview principals (EKS refuses group names starting `system:`)."""

POLICY_NAME = "django-eks-previewers-dry-run-only"
CLUSTER_ROLE = "django-eks:preview"
APP_ROLE = "django-eks:preview-app"
HELM_STORAGE_ROLE = "django-eks:preview-helm-storage"

READ_VERBS = ["get", "list", "watch"]
DRY_RUN_VERBS = ["create", "patch"]
"""What a preview writes with (pulumi-kubernetes `await.Creation`: POST, `ssaUpdate`: PATCH).
It never deletes in a preview; `update` (PUT) is used only for CustomResourceDefinitions, which
this program installs through Helm charts only."""

APP_KINDS: tuple[tuple[str, str], ...] = (
    ("", "configmaps"),
    ("", "secrets"),
    ("", "serviceaccounts"),
    ("", "services"),
    ("apps", "deployments"),
    ("apps", "statefulsets"),
    ("batch", "jobs"),
    ("batch", "cronjobs"),
    ("autoscaling", "horizontalpodautoscalers"),
    ("policy", "poddisruptionbudgets"),
    ("networking.k8s.io", "networkpolicies"),
    ("elbv2.k8s.aws", "targetgroupbindings"),
    ("keda.sh", "scaledobjects"),
    ("keda.sh", "triggerauthentications"),
)
"""(API group, resource) of every kind the program applies in the app namespace itself."""

HELM_NAMESPACES: tuple[str, ...] = tuple(
    dict.fromkeys(
        [load_balancer_controller.NAMESPACE, cluster_autoscaler.NAMESPACE, keda.NAMESPACE]
    )
)
"""Where the Helm releases live; Helm 3 keeps each release's state in Secrets there."""

LABELS = {"app.kubernetes.io/managed-by": "pulumi", "app.kubernetes.io/part-of": "django-eks"}

MATCH_PREVIEWERS = (
    f"has(request.userInfo.groups) && '{PREVIEWERS_GROUP}' in request.userInfo.groups"
)
"""Which requests the policy judges. `groups` and `dryRun` are optional fields of the request
type the API server declares for CEL (apiserver `admission/plugin/cel/compile.go`,
`BuildRequestType`), so both are tested with has() before use: an error would deny (Fail)."""
ONLY_DRY_RUNS = "has(request.dryRun) && request.dryRun"


def _metadata(name: str, namespace: str | None = None) -> Manifest:
    metadata: Manifest = {"name": name, "labels": dict(LABELS)}
    if namespace is not None:
        metadata["namespace"] = namespace
    return metadata


def _group_subject() -> list[Manifest]:
    return [{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": PREVIEWERS_GROUP}]


def admission_policy() -> Manifest:
    """Denies every write and connect of a previewer that is not a dry run."""
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": _metadata(POLICY_NAME),
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": ["*"],
                        "apiVersions": ["*"],
                        "operations": ["CREATE", "UPDATE", "DELETE", "CONNECT"],
                        # "*" alone would leave out subresources (pods/exec, */status, */scale).
                        "resources": ["*/*"],
                        "scope": "*",
                    }
                ]
            },
            "matchConditions": [{"name": "previewers", "expression": MATCH_PREVIEWERS}],
            "validations": [
                {
                    "expression": ONLY_DRY_RUNS,
                    "message": f"members of {PREVIEWERS_GROUP} may only send dry runs "
                    "(pulumi preview); deploy with the admin principal",
                    "reason": "Forbidden",
                }
            ],
        },
    }


def admission_policy_binding() -> Manifest:
    """Binds the policy to every request (no matchResources), denying on failure."""
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": _metadata(POLICY_NAME),
        "spec": {"policyName": POLICY_NAME, "validationActions": ["Deny"]},
    }


def _rules_by_group(kinds: Sequence[tuple[str, str]], verbs: list[str]) -> list[Manifest]:
    groups: dict[str, list[str]] = {}
    for group, resource in kinds:
        groups.setdefault(group, []).append(resource)
    return [
        {"apiGroups": [group], "resources": resources, "verbs": list(verbs)}
        for group, resources in groups.items()
    ]


def cluster_role() -> Manifest:
    """Cluster-scoped: the app namespace, and reading this module's own objects."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": _metadata(CLUSTER_ROLE),
        "rules": [
            {"apiGroups": [""], "resources": ["namespaces"], "verbs": list(READ_VERBS)},
            # A create cannot be limited to names (the name is not known to RBAC at create).
            {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["create"]},
            {
                "apiGroups": [""],
                "resources": ["namespaces"],
                "verbs": ["patch"],
                "resourceNames": [APP_NAMESPACE],
            },
            {
                "apiGroups": ["rbac.authorization.k8s.io"],
                "resources": ["clusterroles", "clusterrolebindings"],
                "verbs": ["get"],
                "resourceNames": [CLUSTER_ROLE, APP_ROLE, HELM_STORAGE_ROLE],
            },
            {
                "apiGroups": ["admissionregistration.k8s.io"],
                "resources": ["validatingadmissionpolicies", "validatingadmissionpolicybindings"],
                "verbs": ["get"],
                "resourceNames": [POLICY_NAME],
            },
        ],
    }


def app_role() -> Manifest:
    """Bound in the app namespace: read and dry-run every kind the program applies there."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": _metadata(APP_ROLE),
        "rules": [
            *_rules_by_group(APP_KINDS, [*READ_VERBS, *DRY_RUN_VERBS]),
            {
                "apiGroups": ["rbac.authorization.k8s.io"],
                "resources": ["rolebindings"],
                "verbs": ["get"],
                "resourceNames": [APP_ROLE],
            },
        ],
    }


def helm_storage_role() -> Manifest:
    """Bound where Helm releases live: Helm 3 reads a release by listing its Secrets."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": _metadata(HELM_STORAGE_ROLE),
        "rules": [
            {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]},
            {
                "apiGroups": ["rbac.authorization.k8s.io"],
                "resources": ["rolebindings"],
                "verbs": ["get"],
                "resourceNames": [HELM_STORAGE_ROLE],
            },
        ],
    }


def cluster_role_binding() -> Manifest:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": _metadata(CLUSTER_ROLE),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": CLUSTER_ROLE},
        "subjects": _group_subject(),
    }


def role_binding(role: str, namespace: str) -> Manifest:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": _metadata(role, namespace),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": _group_subject(),
    }


def manifests(*, with_app: bool) -> list[Manifest]:
    """Every object, in creation order; the app namespace's binding only when the app exists."""
    objects = [
        admission_policy(),
        admission_policy_binding(),
        cluster_role(),
        app_role(),
        helm_storage_role(),
        cluster_role_binding(),
        *(role_binding(HELM_STORAGE_ROLE, ns) for ns in HELM_NAMESPACES),
    ]
    if with_app:
        objects.append(role_binding(APP_ROLE, APP_NAMESPACE))
    return objects
