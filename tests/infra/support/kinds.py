"""The Kubernetes kinds of an offline run's resources."""

from __future__ import annotations

from stack.tools.offline import RecordedResource

RBAC_KINDS = {"ClusterRole", "ClusterRoleBinding", "RoleBinding", "Role"}
GUARD_KINDS = {"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}
"""The preview group's guard (stack.addons.preview_grants)."""


def kind_of(resource: RecordedResource) -> str:
    """The Kubernetes kind of a Kubernetes object ("" for anything else)."""
    return resource.type.rsplit(":", 1)[-1] if resource.type.startswith("kubernetes:") else ""
