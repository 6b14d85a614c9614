"""What the preview group may do: it can dry-run what an update would do, and cannot apply it
(stack.addons.preview_grants, as the program registers it).

What a `pulumi preview` sends to the API server (pulumi-kubernetes, provider/pkg, read at
pulumi/pulumi-kubernetes 94977969, the provider of the pinned SDK's major version):

- a create: `await.Creation` -> `client.Create(..., DryRun: [All])` (await/await.go:243-252),
  verb `create`;
- an update: `await.Update` -> `client.Get` (await/await.go:462) then `ssaUpdate` ->
  `client.Patch(ApplyPatchType, DryRun: [All])` (await/await.go:643-671), verbs `get`, `patch`;
- a Job with `pulumi.com/replaceUnready`: `Diff` reads the live Job (provider/provider.go:1622,
  Diff, `readLiveObject`), verb `get`;
- a refresh (`pulumi preview --refresh`): `Read` gets every object, and a Helm v3 Release is read
  through Helm's storage (`helm_release.go` `getRelease` -> Helm `action.Get` -> storage
  `Query` -> secrets driver `List` with a label selector), verbs `get` and `list` on Secrets in
  the release's namespace.
A forbidden dry run does not fail the preview: the provider falls back to showing the inputs
(provider/provider.go:1800-1803 for creates, 2455-2458 for updates; pulumi-kubernetes#2419), so
a preview with too few rights is silently a client-side preview.

Kubernetes rules reproduced here:
- dry runs are authorized like the real request
  (https://kubernetes.io/docs/reference/using-api/api-concepts/#dry-run-authorization);
- RBAC matching: kubernetes/kubernetes pkg/apis/rbac/v1/evaluation_helpers.go (v1.34.0
  L52-78 `ResourceMatches`: "*" matches subresources too, an exact "pods" does not match
  "pods/exec"; `ResourceNameMatches`; `VerbMatches`; `APIGroupMatches`), and
  plugin/pkg/auth/authorizer/rbac/rbac.go (a RoleBinding grants only in its namespace);
- admission rule matching: staging/src/k8s.io/apiserver/pkg/admission/plugin/webhook/
  predicates/rules/rules.go@7fc9c57 L106-117 (`resource()`: "*" is resources without
  subresources, "*/*" all of them) and L83-96 (`operation()`), shared by admission policies;
- a policy's matchConditions must all be true for its validations to run, and a validation
  that is not true denies; an evaluation error follows failurePolicy
  (https://kubernetes.io/docs/reference/access-authn-authz/validating-admission-policy/);
- the CEL `request` variable is an AdmissionRequest whose `dryRun` and `userInfo.groups` are
  optional (apiserver admission/plugin/cel/compile.go `BuildRequestType`);
- API-defined admission policies skip ValidatingAdmissionPolicies and their bindings
  (apiserver admission/plugin/policy/generic/plugin.go `admissionResources`, `Dispatch`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, get_args

import celpy
import kubernetes_validate
import pytest

from stack.addons.preview_grants import HELM_NAMESPACES, PREVIEWERS_GROUP, admission_policy, manifests
from stack.config.model import KubernetesVersion
from stack.config.names import NAMESPACE as APP_NAMESPACE
from tests.infra.support.stack_files import STACKS, stack_run
from tests.infra.support.kinds import GUARD_KINDS, RBAC_KINDS, kind_of


# --- schemas -------------------------------------------------------------------------------


@pytest.mark.parametrize("version", get_args(KubernetesVersion))
def test_every_object_validates_against_the_kubernetes_schema(version: str) -> None:
    for manifest in manifests(with_app=True):
        kubernetes_validate.validate(manifest, f"{version}.0", strict=True)


# --- the admission policy, evaluated -------------------------------------------------------


def _rule_matches(rule: dict[str, Any], request: dict[str, Any]) -> bool:
    """rules.go `Matches`: operation, group, version and resource/subresource."""
    def exact_or_wildcard(items: list[str], value: str) -> bool:
        return "*" in items or value in items

    resource = request["resource"]
    sub = request.get("subResource", "")
    resource_ok = False
    for item in rule["resources"]:
        res, _, rule_sub = item.partition("/")
        if (res == "*" or res == resource["resource"]) and (rule_sub == "*" or rule_sub == sub):
            resource_ok = True
    return (
        exact_or_wildcard(rule["operations"], request["operation"])
        and exact_or_wildcard(rule["apiGroups"], resource["group"])
        and exact_or_wildcard(rule["apiVersions"], resource["version"])
        and resource_ok
    )


def _exempt(request: dict[str, Any]) -> bool:
    """generic/plugin.go: API-defined policies never see these resources."""
    return request["resource"]["group"] == "admissionregistration.k8s.io" and request["resource"][
        "resource"
    ] in {
        "validatingadmissionpolicies",
        "validatingadmissionpolicybindings",
        "mutatingadmissionpolicies",
        "mutatingadmissionpolicybindings",
    }


def admitted(policy: dict[str, Any], request: dict[str, Any]) -> bool:
    """Whether the policy (bound with validationActions [Deny]) lets `request` through."""
    spec = policy["spec"]
    if _exempt(request):
        return True
    if not any(_rule_matches(rule, request) for rule in spec["matchConstraints"]["resourceRules"]):
        return True
    env = celpy.Environment()
    activation = {"request": celpy.json_to_cel(request)}

    def evaluate(expression: str) -> bool | None:
        result = env.program(env.compile(expression)).evaluate(activation)
        return bool(result) if isinstance(result, celpy.celtypes.BoolType) else None

    fail_closed = spec["failurePolicy"] == "Fail"
    for condition in spec.get("matchConditions", []):
        matched = evaluate(condition["expression"])
        if matched is None:
            return not fail_closed
        if not matched:
            return True
    for validation in spec["validations"]:
        valid = evaluate(validation["expression"])
        if valid is None:
            return not fail_closed
        if not valid:
            return False
    return True


def request(
    operation: str,
    resource: str,
    *,
    groups: list[str],
    dry_run: bool | None,
    group: str = "",
    version: str = "v1",
    sub: str = "",
    namespace: str = APP_NAMESPACE,
) -> dict[str, Any]:
    """An AdmissionRequest as the API server gives it to CEL (no uid, object, oldObject)."""
    shaped: dict[str, Any] = {
        "kind": {"group": group, "version": version, "kind": resource.title()},
        "resource": {"group": group, "version": version, "resource": resource},
        "requestKind": {"group": group, "version": version, "kind": resource.title()},
        "requestResource": {"group": group, "version": version, "resource": resource},
        "name": "x",
        "namespace": namespace,
        "operation": operation,
        "userInfo": {"username": "arn:aws:sts::111122223333:assumed-role/r/s", "groups": groups},
    }
    if sub:
        shaped["subResource"] = shaped["requestSubResource"] = sub
    if dry_run is not None:
        shaped["dryRun"] = dry_run
    return shaped


PREVIEWER = [PREVIEWERS_GROUP, "system:authenticated"]
ADMINS = ["system:authenticated"]  # EKS access policies add no group


@pytest.mark.parametrize(
    ("operation", "resource", "group"),
    [
        ("CREATE", "jobs", "batch"),
        ("CREATE", "configmaps", ""),
        ("UPDATE", "deployments", "apps"),  # a server-side-apply PATCH is an UPDATE in admission
        ("CREATE", "namespaces", ""),
    ],
)
def test_a_previewers_dry_run_is_admitted_and_its_real_write_denied(
    operation: str, resource: str, group: str
) -> None:
    policy = admission_policy()
    assert admitted(policy, request(operation, resource, group=group, groups=PREVIEWER, dry_run=True))
    assert not admitted(policy, request(operation, resource, group=group, groups=PREVIEWER, dry_run=False))
    # dryRun is optional in the declared request type: absent means a real write.
    assert not admitted(policy, request(operation, resource, group=group, groups=PREVIEWER, dry_run=None))


def test_a_previewer_cannot_delete_scale_or_connect_for_real() -> None:
    policy = admission_policy()
    denied = [
        request("DELETE", "deployments", group="apps", groups=PREVIEWER, dry_run=False),
        request("DELETE", "namespaces", groups=PREVIEWER, dry_run=False, namespace=""),
        request("UPDATE", "deployments", group="apps", sub="scale", groups=PREVIEWER, dry_run=False),
        request("UPDATE", "deployments", group="apps", sub="status", groups=PREVIEWER, dry_run=False),
        request("CONNECT", "pods", sub="exec", groups=PREVIEWER, dry_run=False),
        request("CONNECT", "pods", sub="portforward", groups=PREVIEWER, dry_run=False),
        request("CREATE", "serviceaccounts", sub="token", groups=PREVIEWER, dry_run=False),
        request("CREATE", "clusterrolebindings", group="rbac.authorization.k8s.io", groups=PREVIEWER,
                dry_run=False, namespace=""),
        request("UPDATE", "targetgroupbindings", group="elbv2.k8s.aws", version="v1beta1",
                groups=PREVIEWER, dry_run=False),
    ]
    for r in denied:
        assert not admitted(policy, r), r["operation"] + " " + r["resource"]["resource"]


def test_the_admin_and_everyone_else_are_unaffected() -> None:
    policy = admission_policy()
    for dry_run in (False, None, True):
        assert admitted(policy, request("CREATE", "jobs", group="batch", groups=ADMINS, dry_run=dry_run))
        assert admitted(policy, request("DELETE", "namespaces", groups=ADMINS, dry_run=dry_run, namespace=""))
    # A request without groups (not authenticated through the usual chain) is not judged: no error.
    no_groups = request("CREATE", "pods", groups=[], dry_run=False)
    del no_groups["userInfo"]["groups"]
    assert admitted(policy, no_groups)


def test_the_policy_cannot_guard_admission_policies_so_rbac_must_not_grant_them() -> None:
    policy = admission_policy()
    vap = request("DELETE", "validatingadmissionpolicies", group="admissionregistration.k8s.io",
                  groups=PREVIEWER, dry_run=False, namespace="")
    assert admitted(policy, vap)  # exempt: only RBAC stands between a previewer and this
    assert not allowed(rbac_objects("dev"), "delete", "admissionregistration.k8s.io",
                       "validatingadmissionpolicies", namespace=None, name=vap["name"])


# --- RBAC, evaluated -----------------------------------------------------------------------


@dataclass(frozen=True)
class Grant:
    rules: list[dict[str, Any]]
    namespace: str | None
    """None: cluster-wide (ClusterRoleBinding); else only in that namespace (RoleBinding)."""


def rbac_objects(stack: str) -> list[Grant]:
    """What the program registers, bound to the previewers' group, as RBAC resolves it."""
    resources = stack_run(stack).resources
    roles = {
        (r.inputs["metadata"].get("namespace"), r.inputs["metadata"]["name"], kind_of(r)): r.inputs["rules"]
        for r in resources
        if kind_of(r) in {"ClusterRole", "Role"} and r.type.startswith("kubernetes:rbac")
    }
    grants = []
    for binding in (r for r in resources if kind_of(r) in {"ClusterRoleBinding", "RoleBinding"}):
        subjects = binding.inputs["subjects"]
        if not any(s["kind"] == "Group" and s["name"] == PREVIEWERS_GROUP for s in subjects):
            continue
        ref = binding.inputs["roleRef"]
        namespace = binding.inputs["metadata"].get("namespace") if kind_of(binding) == "RoleBinding" else None
        role_ns = namespace if ref["kind"] == "Role" else None
        grants.append(Grant(roles[(role_ns, ref["name"], ref["kind"])], namespace))
    return grants


def _rule_allows(rule: dict[str, Any], verb: str, group: str, resource: str, name: str | None) -> bool:
    """evaluation_helpers.go: VerbMatches, APIGroupMatches, ResourceMatches, ResourceNameMatches."""
    if not ("*" in rule["verbs"] or verb in rule["verbs"]):
        return False
    if not ("*" in rule["apiGroups"] or group in rule["apiGroups"]):
        return False
    base, _, sub = resource.partition("/")
    resource_ok = False
    for item in rule["resources"]:
        if item == "*" or item == resource:
            resource_ok = True
        elif sub and item.startswith("*/") and item[2:] == sub:
            resource_ok = True
    if not resource_ok:
        return False
    names = rule.get("resourceNames") or []
    return not names or (name is not None and name in names)


def allowed(
    grants: list[Grant], verb: str, group: str, resource: str, *, namespace: str | None, name: str | None
) -> bool:
    for grant in grants:
        if grant.namespace is not None and grant.namespace != namespace:
            continue
        if any(_rule_allows(rule, verb, group, resource, name) for rule in grant.rules):
            return True
    return False


def _plural(kind: str) -> str:
    lower = kind.lower()
    if lower.endswith("y"):
        return lower[:-1] + "ies"
    if lower.endswith("s"):
        return lower + "es"
    return lower + "s"


def preview_requests(stack: str) -> list[tuple[str, str, str, str | None, str | None]]:
    """(verb, group, resource, namespace, name) of every request a preview of `stack` may send,
    from the Kubernetes objects the program registers (see the module docstring)."""
    run = stack_run(stack)
    wanted: list[tuple[str, str, str, str | None, str | None]] = []
    for r in run.resources:
        if not r.type.startswith("kubernetes:") or r.type.startswith("pulumi:providers"):
            continue
        group_version, kind = r.type.split(":")[1], kind_of(r)
        group = group_version.split("/")[0]
        group = "" if group == "core" else group
        if group == "helm.sh":
            namespace = r.inputs["namespace"]
            wanted += [("list", "", "secrets", namespace, None), ("get", "", "secrets", namespace, None)]
            continue
        metadata = r.inputs["metadata"]
        namespace, name = metadata.get("namespace"), metadata.get("name")
        resource = _plural(kind)
        wanted.append(("get", group, resource, namespace, name))
        if kind in RBAC_KINDS | GUARD_KINDS:
            continue  # the preview's own objects: read only (see below)
        wanted += [("create", group, resource, namespace, name), ("patch", group, resource, namespace, name)]
    return wanted


@pytest.mark.parametrize("stack", STACKS)
def test_every_request_a_preview_sends_is_granted(stack: str) -> None:
    grants = rbac_objects(stack)
    missing = [w for w in preview_requests(stack) if not allowed(grants, w[0], w[1], w[2], namespace=w[3], name=w[4])]
    assert not missing


@pytest.mark.parametrize(
    ("verb", "group", "resource", "namespace", "name"),
    [
        ("create", "", "pods/exec", APP_NAMESPACE, "web-1"),
        ("get", "", "pods/exec", APP_NAMESPACE, "web-1"),  # websocket exec is a GET
        ("create", "", "pods/attach", APP_NAMESPACE, "web-1"),
        ("create", "", "pods/portforward", APP_NAMESPACE, "web-1"),
        ("get", "", "services/proxy", APP_NAMESPACE, "web"),
        ("get", "", "nodes/proxy", None, "ip-10-0-0-1"),
        ("create", "", "serviceaccounts/token", APP_NAMESPACE, "web"),
        ("delete", "apps", "deployments", APP_NAMESPACE, "web"),
        ("deletecollection", "", "secrets", APP_NAMESPACE, None),
        ("get", "", "secrets", "default", "anything"),
        ("create", "", "secrets", "kube-system", None),
        ("patch", "", "namespaces", None, "kube-system"),
        ("impersonate", "", "users", None, "admin"),
        ("escalate", "rbac.authorization.k8s.io", "clusterroles", None, "django-eks:preview"),
        ("bind", "rbac.authorization.k8s.io", "clusterroles", None, "cluster-admin"),
        ("create", "rbac.authorization.k8s.io", "clusterrolebindings", None, None),
        ("patch", "admissionregistration.k8s.io", "validatingadmissionpolicies", None,
         "django-eks-previewers-dry-run-only"),
        ("delete", "admissionregistration.k8s.io", "validatingadmissionpolicybindings", None,
         "django-eks-previewers-dry-run-only"),
        ("create", "admissionregistration.k8s.io", "validatingwebhookconfigurations", None, None),
    ],
)
def test_no_exec_no_delete_no_escalation(
    verb: str, group: str, resource: str, namespace: str | None, name: str | None
) -> None:
    for stack in STACKS:
        assert not allowed(rbac_objects(stack), verb, group, resource, namespace=namespace, name=name), stack


def test_helm_release_storage_is_readable_where_releases_live() -> None:
    grants = rbac_objects("prod")
    releases = {r.inputs["namespace"] for r in stack_run("prod").resources if r.type == "kubernetes:helm.sh/v3:Release"}
    assert releases <= set(HELM_NAMESPACES)
    for namespace in releases:
        assert allowed(grants, "list", "", "secrets", namespace=namespace, name=None)
