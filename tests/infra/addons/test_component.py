"""The add-ons component in the whole program: what is registered, with which values, in which order."""

from __future__ import annotations

import json

import pytest

from stack.addons import cluster_autoscaler as ca
from stack.addons import component, keda
from stack.addons import load_balancer_controller as lbc
from stack.model.pod_requests import system_pool
from stack.config.model import NODE_POOL_LABEL, StackConfig
from stack.tools.offline import OfflineRun, RecordedResource
from stack.tools.offline import run_stack
from stack.workloads import component as workloads
from tests.infra.support.stack_files import STACKS, stack_run
from tests.infra.support.aliases import alias_urn, child_urn, recorded_alias_specs
from tests.infra.support.dependencies import comes_after
from tests.infra.support.manifests import worker_names

RELEASE = "kubernetes:helm.sh/v3:Release"


def release(run: OfflineRun, name: str) -> RecordedResource:
    return run.named(RELEASE, name)


@pytest.mark.parametrize("stack", STACKS)
def test_keda_is_pinned_and_runs_on_the_system_pool_with_budgets(stack: str) -> None:
    run = stack_run(stack)
    inputs = release(run, "autoscaling-keda").inputs
    assert (inputs["chart"], inputs["version"]) == ("keda", keda.CHART_VERSION)
    assert inputs["repositoryOpts"] == {"repo": keda.CHART_REPOSITORY}
    assert inputs["namespace"] == keda.NAMESPACE
    values = inputs["values"]
    pool = system_pool(run.config)
    for component in ("operator", "metricsServer", "webhooks"):
        assert values[component]["nodeSelector"] == {NODE_POOL_LABEL: pool}
    assert values["operator"]["replicaCount"] == 2
    assert set(values["podDisruptionBudget"]) == {"operator", "metricServer", "webhooks"}
    assert values["podDisruptionBudget"]["operator"] == {"minAvailable": 1}


@pytest.mark.parametrize("stack", STACKS)
def test_cluster_autoscaler_has_pod_identity_and_the_scoped_policy(stack: str) -> None:
    run = stack_run(stack)
    cluster_name = run.outputs["clusterName"]
    inputs = release(run, "autoscaling-cluster-autoscaler").inputs
    assert (inputs["chart"], inputs["version"]) == ("cluster-autoscaler", ca.CHART_VERSION)
    assert inputs["values"]["image"]["tag"] == ca.IMAGE_TAGS[run.config.cluster.version]
    assert inputs["values"]["autoDiscovery"]["clusterName"] == cluster_name
    association = run.named("aws:eks/podIdentityAssociation:PodIdentityAssociation", "autoscaling-cluster-autoscaler")
    assert (association.inputs["namespace"], association.inputs["serviceAccount"]) == (
        ca.NAMESPACE,
        inputs["values"]["rbac"]["serviceAccount"]["name"],
    )
    # Pods get credentials at start: the association exists before the release.
    assert comes_after(run, release(run, "autoscaling-cluster-autoscaler"), association)
    policy = json.loads(run.named("aws:iam/policy:Policy", "autoscaling-cluster-autoscaler").inputs["policy"])
    assert policy == ca.iam_policy_document(cluster_name=cluster_name, region=run.config.region)
    role = run.named("aws:iam/role:Role", "autoscaling-cluster-autoscaler")
    trust = json.loads(role.inputs["assumeRolePolicy"])
    assert trust["Statement"][0]["Principal"] == {"Service": "pods.eks.amazonaws.com"}


@pytest.mark.parametrize("stack", STACKS)
def test_every_node_groups_auto_scaling_group_gets_its_tags(stack: str) -> None:
    run = stack_run(stack)
    cluster_name = run.outputs["clusterName"]
    tags = run.of_type("aws:autoscaling/tag:Tag")
    for pool_name, pool in run.config.node_pools.items():
        group = f"eks-{run.outputs['nodePoolNames'][pool_name]}-placeholder"
        on_group = {t.inputs["tag"]["key"]: t.inputs["tag"]["value"] for t in tags if t.inputs["autoscalingGroupName"] == group}
        assert on_group == ca.auto_scaling_group_tags(cluster_name, pool_name, pool)
        assert all(not t.inputs["tag"]["propagateAtLaunch"] for t in tags)


@pytest.mark.parametrize("stack", STACKS)
def test_destroy_order(stack: str) -> None:
    run = stack_run(stack)
    keda_release = release(run, "autoscaling-keda")
    autoscaler = release(run, "autoscaling-cluster-autoscaler")
    workers = [f"app-{name}" for name in worker_names(run.config)]
    # Destroy deletes dependents first: each ScaledObject before KEDA ...
    for name in workers:
        assert comes_after(run, run.named("kubernetes:keda.sh/v1alpha1:ScaledObject", name), keda_release)
    # ... the app before the autoscalers ...
    for name in ("app-web", *workers):
        deployment = run.named("kubernetes:apps/v1:Deployment", name)
        assert comes_after(run, deployment, keda_release) and comes_after(run, deployment, autoscaler)
    # ... and the autoscalers before the node groups.
    for group in run.of_type("aws:eks/nodeGroup:NodeGroup"):
        assert comes_after(run, keda_release, group)
        assert comes_after(run, autoscaler, group)


CONTROLLER_TYPES = (
    "aws:iam/role:Role",
    "aws:iam/policy:Policy",
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
    "aws:eks/podIdentityAssociation:PodIdentityAssociation",
    RELEASE,
)
"""Everything the load balancer controller is made of."""


@pytest.mark.parametrize("stack", STACKS)
def test_load_balancer_controller_is_pinned_configured_and_has_its_role(stack: str) -> None:
    run = stack_run(stack)
    inputs = release(run, component.LOAD_BALANCER_CONTROLLER).inputs
    assert (inputs["chart"], inputs["version"]) == ("aws-load-balancer-controller", lbc.CHART_VERSION)
    assert inputs["repositoryOpts"] == {"repo": "https://aws.github.io/eks-charts"}
    assert inputs["namespace"] == "kube-system"
    # Awaited until its webhooks answer, before the app's objects they admit.
    assert (inputs["skipAwait"], inputs["timeout"]) == (False, 600)
    values = inputs["values"]
    assert values["clusterName"] == run.outputs["clusterName"]
    assert values["region"] == run.config.region
    # The VPC the target group is in: the controller registers pod IPs into it.
    assert values["vpcId"] == run.named("aws:lb/targetGroup:TargetGroup", "web-tg").inputs["vpcId"]
    assert values["replicaCount"] == 2
    association = run.named("aws:eks/podIdentityAssociation:PodIdentityAssociation", component.LOAD_BALANCER_CONTROLLER)
    assert (association.inputs["namespace"], association.inputs["serviceAccount"]) == (
        "kube-system",
        values["serviceAccount"]["name"],
    )
    assert comes_after(run, release(run, component.LOAD_BALANCER_CONTROLLER), association)
    policy = run.named("aws:iam/policy:Policy", component.LOAD_BALANCER_CONTROLLER).inputs["policy"]
    assert json.loads(policy) == lbc.iam_policy_document()


@pytest.mark.parametrize("stack", STACKS)
def test_the_app_comes_after_the_load_balancer_controller_and_goes_before_it(stack: str) -> None:
    run = stack_run(stack)
    controller = release(run, component.LOAD_BALANCER_CONTROLLER)
    # The binding is deleted while the controller still runs to remove its finalizer; pods
    # are created once its webhook gives them their readiness gate.
    binding = run.named("kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding", "app-web-target-group-binding")
    assert comes_after(run, binding, controller)
    # The Service too: the controller's webhooks answer before anything they admit is created.
    assert comes_after(run, run.named("kubernetes:core/v1:Service", "app-web"), controller)
    for name in ("app-web", *(f"app-{name}" for name in worker_names(run.config))):
        assert comes_after(run, run.named("kubernetes:apps/v1:Deployment", name), controller)
    # As before it moved into the add-ons: after the autoscalers and the node groups.
    for dependency in (release(run, "autoscaling-keda"), release(run, "autoscaling-cluster-autoscaler")):
        assert comes_after(run, controller, dependency)
    for group in run.of_type("aws:eks/nodeGroup:NodeGroup"):
        assert comes_after(run, controller, group)


@pytest.mark.parametrize("stack", STACKS)
def test_load_balancer_controller_keeps_its_state_from_the_app_component(
    stack: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The controller moved from the app component (`app`, stack.workloads) to the add-ons:
    each of its resources has a new URN, and an alias to the old one, so that `pulumi up` on a
    deployed stack moves it in the state rather than creating a second controller (and a second
    IAM role of the same name) and deleting the first. The alias is read as the SDK sends it to
    the engine and resolved by the engine's rule (tests/infra/support/aliases.py)."""
    with recorded_alias_specs(monkeypatch) as specs:
        run = run_stack(stack)
    app = run.named(workloads.TYPE, "app")
    addons = run.named(component.TYPE, "autoscaling")
    for type_ in CONTROLLER_TYPES:
        moved = run.named(type_, component.LOAD_BALANCER_CONTROLLER)
        assert moved.parent == addons.urn
        former = child_urn(app, type_, component.LOAD_BALANCER_CONTROLLER)
        assert moved.urn != former
        assert [alias_urn(spec, moved) for spec in specs[(type_, moved.name)]] == [former], type_
        # Nothing else claims the old URN.
        assert all(r.urn != former for r in run.resources)


def test_a_stack_without_the_app_has_no_load_balancer_controller() -> None:
    """As before the move: the controller came with the app (stack.tools.release.bootstrap)."""
    from tests.infra.support.stack_files import run_edited

    run = run_edited(lambda raw: raw.pop("django-eks:image", None))
    assert run.config.image.tag is None
    assert [r for r in run.of_type(RELEASE) if r.name == component.LOAD_BALANCER_CONTROLLER] == []
    assert {r.name for r in run.of_type(RELEASE)} == {"autoscaling-keda", "autoscaling-cluster-autoscaler"}


def test_tainted_system_pool_is_tolerated() -> None:
    from stack.config.rules import parse_stack_config
    from tests.infra.support.stack_files import project_config

    raw = project_config("prod")
    raw["nodePools"]["web"]["taints"] = [{"key": "system", "effect": "PreferNoSchedule"}]
    config: StackConfig = parse_stack_config(raw)
    pool = system_pool(config)
    values = keda.chart_values(config, pool)
    assert values["operator"]["tolerations"] == [{"key": "system", "effect": "PreferNoSchedule", "operator": "Exists"}]
    assert ca.chart_values(config, cluster_name="c", system_pool=pool)["tolerations"] == values["operator"]["tolerations"]


def test_keda_values_use_only_keys_the_chart_defines() -> None:
    import yaml

    from stack.config.rules import parse_stack_config
    from tests.infra.support.stack_files import project_config

    chart = yaml.safe_load((keda.DATA_DIR / f"values-{keda.CHART_VERSION}.yaml").read_text())
    values = keda.chart_values(parse_stack_config(project_config("prod")), "web")

    def unknown(ours: dict, theirs: dict, path: str = "") -> list[str]:
        missing = []
        for key, value in ours.items():
            if key not in theirs:
                missing.append(path + key)
            elif isinstance(value, dict) and isinstance(theirs[key], dict) and theirs[key]:
                missing += unknown(value, theirs[key], f"{path}{key}.")
        return missing

    assert unknown(values, chart) == []
