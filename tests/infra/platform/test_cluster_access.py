"""Who administers the cluster, and when the Kubernetes provider may be used."""

from __future__ import annotations

from typing import Any

import pytest

from stack.config.rules import StackConfigError, parse_stack_config
from stack.tools.offline import RecordedResource
from tests.infra.support.stack_files import STACKS, run_edited, stack_run

ENTRY = "aws:eks/accessEntry:AccessEntry"
ASSOCIATION = "aws:eks/accessPolicyAssociation:AccessPolicyAssociation"
PROVIDER = "pulumi:providers:kubernetes"
ADMIN = "arn:aws:iam::111122223333:role/django-eks-deploy"
PREVIEW = "arn:aws:iam::111122223333:role/django-eks-preview"


def grants(resources: list[RecordedResource]) -> dict[str, str]:
    """principal ARN -> the access policy it is granted cluster-wide."""
    result = {}
    for association in (r for r in resources if r.type == ASSOCIATION):
        assert association.inputs["accessScope"] == {"type": "cluster"}
        result[association.inputs["principalArn"]] = association.inputs["policyArn"].rsplit("/", 1)[-1]
    return result


@pytest.mark.parametrize("stack", STACKS)
def test_cluster_access_comes_from_config_alone(stack: str) -> None:
    run = stack_run(stack)
    access = run.config.cluster.access
    expected = {arn: "AmazonEKSClusterAdminPolicy" for arn in access.admin_principal_arns}
    expected |= {arn: "AmazonEKSViewPolicy" for arn in access.view_principal_arns}
    assert grants(run.resources) == expected
    # Previewers have an entry and a Kubernetes group, and no access policy (test_preview_access).
    assert {e.inputs["principalArn"] for e in run.of_type(ENTRY)} == set(expected) | set(
        access.preview_principal_arns
    )
    assert all(e.inputs["type"] == "STANDARD" for e in run.of_type(ENTRY))
    cluster = run.named("aws:eks/cluster:Cluster", "eks").inputs
    assert cluster["accessConfig"] == {
        "authenticationMode": "API",
        "bootstrapClusterCreatorAdminPermissions": False,
    }


def test_shipped_stacks_let_the_preview_role_preview() -> None:
    """The pull-request role is a previewer (dry runs, test_preview_access), not a viewer:
    with AmazonEKSViewPolicy every dry run is forbidden and pulumi-kubernetes silently shows
    the inputs instead (provider.go Create/Update fall back on Forbidden; #2213, #2419)."""
    for stack in STACKS:
        run = stack_run(stack)
        assert grants(run.resources) == {ADMIN: "AmazonEKSClusterAdminPolicy"}, stack
        entries = {e.inputs["principalArn"]: e.inputs for e in run.of_type(ENTRY)}
        assert entries[PREVIEW]["kubernetesGroups"] == ["django-eks:previewers"], stack


def _comparable(resources: list[RecordedResource]) -> list[tuple[str, str, Any, list[str]]]:
    # Registration order varies with the engine's scheduling; what is registered does not.
    return sorted(
        ((r.type, r.name, r.inputs, sorted(r.dependencies)) for r in resources),
        key=lambda item: (item[0], item[1]),
    )


def test_a_change_of_deployer_changes_nothing() -> None:
    from stack.tools.offline import pulumi_config_of, run_program

    config = pulumi_config_of("dev")
    first = run_program(config, stack="dev", deployer="alice-laptop")
    second = run_program(config, stack="dev", deployer="github-actions-deploy")
    assert _comparable(first.resources) == _comparable(second.resources)
    assert first.outputs == second.outputs
    every_input = repr([r.inputs for r in first.resources])
    assert "alice-laptop" not in every_input


def test_adding_a_principal_leaves_the_others_entries_alone() -> None:
    def add_admin(raw: dict[str, Any]) -> None:
        raw["django-eks:cluster"]["access"]["adminPrincipalArns"].insert(
            0, "arn:aws:iam::111122223333:role/ops/oncall"
        )

    before = {r.name: r.inputs["principalArn"] for r in stack_run("dev").of_type(ENTRY)}
    after = {r.name: r.inputs["principalArn"] for r in run_edited(add_admin).of_type(ENTRY)}
    # Same resource names for the same principals: nobody's entry is replaced.
    assert len(after) == len(before) + 1
    assert all(after[name] == arn for name, arn in before.items())


def test_kubernetes_provider_waits_for_access_nodes_and_addons() -> None:
    run = stack_run("prod")
    provider = run.named(PROVIDER, "eks-k8s")
    direct = set(provider.dependencies)
    assert {a.urn for a in run.of_type(ASSOCIATION)} <= direct
    assert {g.urn for g in run.of_type("aws:eks/nodeGroup:NodeGroup")} <= direct
    # The cluster's add-ons; the CloudWatch one (stack.platform.observability) runs no pod the app needs.
    cluster = run.named("django-eks:platform:Cluster", "eks").urn
    assert {a.urn for a in run.of_type("aws:eks/addon:Addon") if a.parent == cluster} <= direct


@pytest.mark.parametrize(
    ("arn", "message"),
    [
        ("arn:aws:sts::111122223333:assumed-role/deploy/session-1", "STS session"),
        ("arn:aws:iam::111122223333:group/admins", "is not an IAM role or user ARN"),
        ("arn:aws:iam::1111:role/deploy", "is not an IAM role or user ARN"),
        ("deploy", "is not an IAM role or user ARN"),
    ],
)
def test_principal_arns_are_validated(arn: str, message: str) -> None:
    with pytest.raises(StackConfigError) as error:
        parse_stack_config({"cluster": {"access": {"adminPrincipalArns": [arn]}}})
    assert "cluster.access.adminPrincipalArns.0" in str(error.value)
    assert message in str(error.value)


def test_role_paths_and_sso_roles_are_accepted() -> None:
    sso = (
        "arn:aws:iam::111122223333:role/aws-reserved/sso.amazonaws.com/eu-west-1/"
        "AWSReservedSSO_AdministratorAccess_0123456789abcdef"
    )
    config = parse_stack_config(
        {"cluster": {"access": {"adminPrincipalArns": [sso, "arn:aws:iam::111122223333:user/alice"]}}}
    )
    assert config.cluster.access.admin_principal_arns[0] == sso


def test_a_principal_is_admin_or_viewer_not_both() -> None:
    with pytest.raises(StackConfigError) as error:
        parse_stack_config(
            {"cluster": {"access": {"adminPrincipalArns": [ADMIN], "viewPrincipalArns": [ADMIN]}}}
        )
    assert "cluster.access.viewPrincipalArns" in str(error.value)
    assert "one access entry per principal" in str(error.value)


def test_a_stack_without_admins_is_refused_before_anything_is_created() -> None:
    def no_admins(raw: dict[str, Any]) -> None:
        raw["django-eks:cluster"]["access"]["adminPrincipalArns"] = []

    recorded: list[RecordedResource] = []
    with pytest.raises(Exception) as error:
        run_edited(no_admins, recorded=recorded)
    assert "cluster.access.adminPrincipalArns" in str(error.value)
    assert not [r for r in recorded if r.type.startswith("kubernetes:")]
