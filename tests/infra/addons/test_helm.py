"""Every add-on is installed the same way (stack.addons.helm): what holds for all three releases."""

from __future__ import annotations

import pytest

from stack.addons import cluster_autoscaler, keda, load_balancer_controller
from stack.addons.helm import MAX_HISTORY
from tests.infra.support.stack_files import STACKS, stack_run
from tests.infra.support.dependencies import comes_after

RELEASE = "kubernetes:helm.sh/v3:Release"
ASSOCIATION = "aws:eks/podIdentityAssociation:PodIdentityAssociation"
ADDONS = (keda, cluster_autoscaler, load_balancer_controller)


@pytest.mark.parametrize("stack", STACKS)
def test_each_add_on_is_one_pinned_release_on_the_clusters_provider(stack: str) -> None:
    run = stack_run(stack)
    releases = {r.inputs["chart"]: r for r in run.of_type(RELEASE)}
    assert set(releases) == {addon.RELEASE.name for addon in ADDONS}
    provider = run.named("pulumi:providers:kubernetes", "eks-k8s")
    for addon in ADDONS:
        release = releases[addon.RELEASE.name]
        assert release.inputs["name"] == addon.RELEASE.name
        assert (release.inputs["version"], release.inputs["repositoryOpts"]) == (
            addon.RELEASE.version,
            {"repo": addon.RELEASE.repository},
        )
        assert release.inputs["namespace"] == addon.RELEASE.namespace
        assert release.inputs["maxHistory"] == MAX_HISTORY
        assert release.provider == provider.urn


@pytest.mark.parametrize("stack", STACKS)
def test_an_add_on_with_an_aws_role_starts_only_once_its_service_account_has_it(stack: str) -> None:
    """EKS Pod Identity hands out credentials when a pod is created, so the association of the
    role with the add-on's service account must exist before the release creates any pod
    (https://docs.aws.amazon.com/eks/latest/userguide/pod-id-how-it-works.html)."""
    run = stack_run(stack)
    associations = run.of_type(ASSOCIATION)
    for addon in (cluster_autoscaler, load_balancer_controller):
        release = next(r for r in run.of_type(RELEASE) if r.inputs["chart"] == addon.RELEASE.name)
        (association,) = [
            a
            for a in associations
            if (a.inputs["namespace"], a.inputs["serviceAccount"]) == (addon.NAMESPACE, addon.SERVICE_ACCOUNT)
        ]
        assert association.name == release.name
        assert comes_after(run, release, association)
