"""The preview principals' access entries: in the previewers' group with no access policy, created
after the guard and the grants (tests/infra/addons/test_preview_grants.py), and moved from viewer
to previewer in place."""

from __future__ import annotations

from typing import Any

import pytest

from stack.addons.preview_grants import PREVIEWERS_GROUP
from tests.infra.support.dependencies import comes_after
from tests.infra.support.stack_files import STACKS, run_edited, stack_run
from tests.infra.support.aliases import alias_urn, recorded_alias_specs
from tests.infra.support.kinds import GUARD_KINDS, RBAC_KINDS, kind_of

ENTRY = "aws:eks/accessEntry:AccessEntry"
ASSOCIATION = "aws:eks/accessPolicyAssociation:AccessPolicyAssociation"
PREVIEW = "arn:aws:iam::111122223333:role/django-eks-preview"
ADMIN = "arn:aws:iam::111122223333:role/django-eks-deploy"


# --- the program: entries, order ---------------------------------------------------------


def test_preview_principals_are_in_the_previewers_group_without_an_access_policy() -> None:
    run = stack_run("dev")
    entries = {e.inputs["principalArn"]: e for e in run.of_type(ENTRY)}
    assert entries[PREVIEW].inputs["kubernetesGroups"] == [PREVIEWERS_GROUP]
    assert entries[PREVIEW].inputs["type"] == "STANDARD"
    associated = {a.inputs["principalArn"] for a in run.of_type(ASSOCIATION)}
    # No EKS access policy: everything the group may do is the RBAC below, which is tested.
    assert PREVIEW not in associated
    assert ADMIN in associated


@pytest.mark.parametrize("stack", STACKS)
def test_the_guard_and_the_grants_exist_before_anyone_is_a_previewer(stack: str) -> None:
    """Created in this order by the admin, deleted in the reverse: a previewer never holds
    RBAC write verbs without the policy that keeps them to dry runs."""
    run = stack_run(stack)
    objects = [r for r in run.resources if kind_of(r) in RBAC_KINDS | GUARD_KINDS]
    preview_entries = [e for e in run.of_type(ENTRY) if e.inputs.get("kubernetesGroups")]
    assert preview_entries, "the shipped stacks list the pull-request role as a previewer"
    for entry in preview_entries:
        for o in objects:
            assert comes_after(run, entry, o), o.name
    binding = next(r for r in objects if kind_of(r) == "ValidatingAdmissionPolicyBinding")
    for grant in (r for r in objects if kind_of(r) in RBAC_KINDS):
        assert comes_after(run, grant, binding), grant.name


def test_no_previewers_no_objects() -> None:
    def without(raw: dict[str, Any]) -> None:
        raw["django-eks:cluster"]["access"]["previewPrincipalArns"] = []

    run = run_edited(without)
    assert not [r for r in run.resources if kind_of(r) in RBAC_KINDS | GUARD_KINDS]


def test_a_principal_is_previewer_or_viewer_not_both() -> None:
    from stack.config.rules import StackConfigError, parse_stack_config

    with pytest.raises(StackConfigError) as error:
        parse_stack_config(
            {"cluster": {"access": {"adminPrincipalArns": [ADMIN], "viewPrincipalArns": [PREVIEW],
                                    "previewPrincipalArns": [PREVIEW]}}}
        )
    assert "cluster.access.previewPrincipalArns" in str(error.value)
    assert "one access entry per principal" in str(error.value)


# --- moving a principal from viewer to previewer -------------------------------------------


def test_moving_the_preview_role_from_viewer_to_previewer_updates_its_entry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """EKS allows one access entry per principal and the engine creates a new resource before
    it deletes an old one, so the previewer entry must be the viewer entry under an alias
    (the engine matches old state by alias URN: tests/infra/support/aliases.py)."""

    def as_viewer(raw: dict[str, Any]) -> None:
        access = raw["django-eks:cluster"]["access"]
        access["viewPrincipalArns"], access["previewPrincipalArns"] = [PREVIEW], []

    before = run_edited(as_viewer)
    old = next(e for e in before.of_type(ENTRY) if e.inputs["principalArn"] == PREVIEW)

    with recorded_alias_specs(monkeypatch) as specs:
        after = run_edited(lambda raw: None)
    new = next(e for e in after.of_type(ENTRY) if e.inputs["principalArn"] == PREVIEW)
    assert old.urn in [alias_urn(spec, new) for spec in specs[(ENTRY, new.name)]]
    assert new.urn != old.urn
