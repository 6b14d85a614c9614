"""The Cluster Autoscaler: its IAM scope, its chart values, the Auto Scaling group tags."""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

import pytest

from stack.addons import cluster_autoscaler as ca
from stack.config.model import NODE_POOL_LABEL, StackConfig
from stack.config.rules import parse_stack_config
from tests.infra.support.stack_files import project_config

CLUSTER = "django-eks-prod"
REGION = "us-east-1"
ACCOUNT = "123456789012"


def asg_arn(name: str, region: str = REGION) -> str:
    return (
        f"arn:aws:autoscaling:{region}:{ACCOUNT}:autoScalingGroup:"
        f"0f5c3a1e-1111-2222-3333-444455556666:autoScalingGroupName/{name}"
    )


def nodegroup_arn(cluster: str, group: str = "web-2026") -> str:
    return f"arn:aws:eks:{REGION}:{ACCOUNT}:nodegroup/{cluster}/{group}/8ec5b1d3-aaaa-bbbb-cccc-ddddeeeeffff"


def allows(policy: dict[str, Any], action: str, resource: str, tags: dict[str, str] | None = None) -> bool:
    """IAM's answer for an identity policy with only Allow statements, Action/Resource
    wildcards and StringEquals on aws:ResourceTag (what this policy uses; anything else in a
    statement fails the test rather than being ignored)."""
    tags = tags or {}
    for statement in policy["Statement"]:
        assert set(statement) <= {"Effect", "Action", "Resource", "Condition"}, statement
        assert statement["Effect"] == "Allow"
        actions = [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
        resources = [statement["Resource"]] if isinstance(statement["Resource"], str) else statement["Resource"]
        if not any(fnmatchcase(action.lower(), a.lower()) for a in actions):
            continue
        if not any(fnmatchcase(resource, r) for r in resources):
            continue
        conditions = statement.get("Condition", {})
        assert set(conditions) <= {"StringEquals"}, conditions
        equal = conditions.get("StringEquals", {})
        if all(
            key.startswith("aws:ResourceTag/") and tags.get(key.removeprefix("aws:ResourceTag/")) == value
            for key, value in equal.items()
        ):
            return True
    return False


@pytest.fixture
def policy() -> dict[str, Any]:
    return ca.iam_policy_document(cluster_name=CLUSTER, region=REGION)


def our_group_tags(config: StackConfig, pool: str) -> dict[str, str]:
    return ca.auto_scaling_group_tags(CLUSTER, pool, config.node_pools[pool])


# --- IAM scope --------------------------------------------------------------------------------


def test_every_upstream_action_is_kept_and_none_added(policy: dict[str, Any]) -> None:
    upstream = {a for s in ca.upstream_policy()["Statement"] for a in s["Action"]}
    ours = {a for s in policy["Statement"] for a in s["Action"]}
    assert ours == upstream


def test_only_read_actions_apply_to_every_resource(policy: dict[str, Any]) -> None:
    for statement in policy["Statement"]:
        if "*" in statement["Resource"]:
            assert all(a.split(":")[1].startswith(("Describe", "Get")) for a in statement["Action"]), statement
            assert "eks:DescribeNodegroup" not in statement["Action"]


def test_scaling_is_allowed_on_this_clusters_groups_as_the_stack_tags_them(
    policy: dict[str, Any], prod_config: StackConfig
) -> None:
    for pool in prod_config.node_pools:
        tags = our_group_tags(prod_config, pool)
        for action in ca.SCOPED_ACTIONS:
            assert allows(policy, action, asg_arn(f"eks-{pool}-abc"), tags), (pool, action)


@pytest.mark.parametrize(
    ("what", "resource", "tags"),
    [
        ("another cluster's group", asg_arn("eks-other"), {ca.ENABLED_TAG: "true", ca.owner_tag("django-eks-dev"): "owned"}),
        ("an untagged group", asg_arn("legacy-asg"), {}),
        ("a group with discovery off", asg_arn("eks-x"), {ca.ENABLED_TAG: "false", ca.owner_tag(CLUSTER): "owned"}),
        ("a group owned by us but not enabled", asg_arn("eks-x"), {ca.owner_tag(CLUSTER): "owned"}),
        ("our tags in another region", asg_arn("eks-x", "eu-west-1"), {ca.ENABLED_TAG: "true", ca.owner_tag(CLUSTER): "owned"}),
    ],
)
def test_scaling_is_denied_outside_this_cluster(
    policy: dict[str, Any], what: str, resource: str, tags: dict[str, str]
) -> None:
    for action in ca.SCOPED_ACTIONS:
        assert not allows(policy, action, resource, tags), what


def test_nodegroup_lookups_are_limited_to_this_cluster(policy: dict[str, Any]) -> None:
    assert allows(policy, "eks:DescribeNodegroup", nodegroup_arn(CLUSTER))
    assert not allows(policy, "eks:DescribeNodegroup", nodegroup_arn("django-eks-dev"))
    assert not allows(policy, "eks:DescribeNodegroup", f"arn:aws:eks:{REGION}:{ACCOUNT}:cluster/{CLUSTER}")


def test_reads_are_allowed_anywhere(policy: dict[str, Any]) -> None:
    for action in ("autoscaling:DescribeAutoScalingGroups", "ec2:DescribeInstanceTypes", "ec2:DescribeImages"):
        assert allows(policy, action, "*")


@pytest.mark.parametrize(
    "action",
    [
        "autoscaling:UpdateAutoScalingGroup",
        "autoscaling:CreateOrUpdateTags",
        "autoscaling:DeleteAutoScalingGroup",
        "ec2:TerminateInstances",
        "ec2:RunInstances",
        "eks:UpdateNodegroupConfig",
        "iam:PassRole",
    ],
)
def test_nothing_else_is_allowed_even_on_our_groups(policy: dict[str, Any], prod_config: StackConfig, action: str) -> None:
    tags = our_group_tags(prod_config, "workers")
    for resource in (asg_arn("eks-workers-abc"), nodegroup_arn(CLUSTER), "*"):
        assert not allows(policy, action, resource, tags)


# --- Auto Scaling group tags ------------------------------------------------------------------


def test_group_tags_describe_a_node_for_scale_from_zero(prod_config: StackConfig) -> None:
    tags = our_group_tags(prod_config, "workers")
    prefix = ca.NODE_TEMPLATE_PREFIX
    assert tags[f"{prefix}/label/{NODE_POOL_LABEL}"] == "workers"
    assert tags[f"{prefix}/label/workload"] == "worker"
    assert tags[f"{prefix}/taint/workload"] == "worker:NoSchedule"
    assert tags[f"{prefix}/resources/ephemeral-storage"] == "30Gi"
    assert tags[ca.ENABLED_TAG] == "true"
    assert tags[ca.owner_tag(CLUSTER)] == "owned"
    web = our_group_tags(prod_config, "web")
    assert not any("/taint/" in key for key in web)


# --- chart values -----------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["1.33", "1.34", "1.35"])
def test_image_minor_matches_the_cluster(version: str) -> None:
    raw = project_config("dev")
    raw["cluster"] = {**raw.get("cluster", {}), "version": version}
    config = parse_stack_config(raw)
    values = ca.chart_values(config, cluster_name=CLUSTER, system_pool="default")
    assert values["image"]["repository"] == ca.IMAGE_REPOSITORY
    assert values["image"]["tag"].startswith(f"v{version}.")


def test_every_allowed_cluster_version_has_an_image() -> None:
    from typing import get_args

    from stack.config.model import KubernetesVersion

    assert set(get_args(KubernetesVersion)) == set(ca.IMAGE_TAGS)


def test_expander_and_scale_down_timing_come_from_config() -> None:
    raw = project_config("dev")
    raw["clusterAutoscaler"] = {
        "expander": "most-pods",
        "scaleDownUnneededMinutes": 3,
        "scaleDownDelayAfterAddMinutes": 0,
        "scaleDownUtilizationThreshold": 0.7,
    }
    args = ca.chart_values(parse_stack_config(raw), cluster_name=CLUSTER, system_pool="default")["extraArgs"]
    assert args["expander"] == "most-pods"
    assert args["scale-down-unneeded-time"] == "3m"
    assert args["scale-down-delay-after-add"] == "0m"
    assert args["scale-down-utilization-threshold"] == 0.7


def test_defaults_are_least_waste() -> None:
    args = ca.chart_values(parse_stack_config(project_config("dev")), cluster_name=CLUSTER, system_pool="default")[
        "extraArgs"
    ]
    assert args["expander"] == "least-waste"
    assert args["scale-down-unneeded-time"] == "10m"


def test_runs_on_the_system_pool_with_pod_identity_and_a_budget(prod_config: StackConfig) -> None:
    values = ca.chart_values(prod_config, cluster_name=CLUSTER, system_pool="web")
    assert values["nodeSelector"] == {NODE_POOL_LABEL: "web"}
    assert values["tolerations"] == []
    assert values["autoDiscovery"] == {"clusterName": CLUSTER}
    assert values["awsRegion"] == prod_config.region
    assert values["rbac"]["serviceAccount"]["name"] == ca.SERVICE_ACCOUNT
    # Pod Identity needs no role annotation and no static keys.
    assert "annotations" not in values["rbac"]["serviceAccount"]
    assert "awsAccessKeyID" not in values
    assert values["podDisruptionBudget"] == {"maxUnavailable": 1}
    assert values["podAnnotations"]["cluster-autoscaler.kubernetes.io/safe-to-evict"] == "false"


def test_values_use_only_keys_the_chart_defines(prod_config: StackConfig) -> None:
    import yaml

    chart = yaml.safe_load((ca.DATA_DIR / f"values-{ca.CHART_VERSION}.yaml").read_text())
    values = ca.chart_values(prod_config, cluster_name=CLUSTER, system_pool="web")
    assert set(values) <= set(chart), set(values) - set(chart)
    assert chart["image"]["repository"] == ca.IMAGE_REPOSITORY


def test_govcloud_groups_are_matched_in_their_partition() -> None:
    policy = ca.iam_policy_document(cluster_name=CLUSTER, region="us-gov-west-1")
    tags = {ca.ENABLED_TAG: "true", ca.owner_tag(CLUSTER): "owned"}
    arn = asg_arn("eks-x", "us-gov-west-1").replace("arn:aws:", "arn:aws-us-gov:")
    assert allows(policy, "autoscaling:SetDesiredCapacity", arn, tags)
    assert not allows(policy, "autoscaling:SetDesiredCapacity", asg_arn("eks-x", "us-gov-west-1"), tags)
