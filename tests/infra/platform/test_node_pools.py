"""Node pools (stack/platform/node_pools.py): a managed node group per configured pool, with its
settings, launch template and AMI, in the private subnets."""

from __future__ import annotations

from typing import Any

import pytest

from stack.config.model import NODE_POOL_LABEL
from stack.tools.offline import OfflineRun, RecordedResource
from tests.infra.support.network import subnet_ids
from tests.infra.support.stack_files import STACKS, run_edited, stack_run

NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"


def node_group(run: OfflineRun, pool: str) -> RecordedResource:
    return run.named(NODE_GROUP, f"eks-{pool}")


@pytest.mark.parametrize("stack", STACKS)
def test_each_configured_pool_is_a_managed_node_group_with_its_settings(stack: str) -> None:
    run = stack_run(stack)
    assert len(run.of_type(NODE_GROUP)) == len(run.config.node_pools)
    for name, pool in run.config.node_pools.items():
        group = node_group(run, name).inputs
        assert group["instanceTypes"] == [pool.instance_type]
        assert group["scalingConfig"] == {
            "minSize": pool.min_size,
            "desiredSize": pool.desired_size,
            "maxSize": pool.max_size,
        }
        assert group["capacityType"] == pool.capacity_type
        assert group["labels"] == {**pool.labels, NODE_POOL_LABEL: name}
        assert [(t["key"], t.get("value"), t["effect"]) for t in group.get("taints", [])] == [
            (t.key, t.value, {"NoSchedule": "NO_SCHEDULE", "NoExecute": "NO_EXECUTE",
                              "PreferNoSchedule": "PREFER_NO_SCHEDULE"}[t.effect])
            for t in pool.taints
        ]
        # Generated names let a replacement create the new group before deleting the old.
        assert "nodeGroupName" not in group and "nodeGroupNamePrefix" not in group


def test_prod_pools_keep_web_and_worker_nodes_apart() -> None:
    run = stack_run("prod")
    workers = node_group(run, "workers").inputs
    assert workers["taints"] == [{"key": "workload", "value": "worker", "effect": "NO_SCHEDULE"}]
    assert "taints" not in node_group(run, "web").inputs or not node_group(run, "web").inputs["taints"]


def test_node_group_desired_size_is_left_to_autoscaling_after_creation() -> None:
    # min and max are set after creation by NodeGroupScaling (see its tests), never by an
    # update of the node group, which would resend the creation-time desired size.
    for group in stack_run("prod").of_type(NODE_GROUP):
        assert group.ignore_changes == ["scalingConfig.desiredSize", "scalingConfig.minSize", "scalingConfig.maxSize"]


def test_launch_template_requires_imdsv2_and_encrypts_a_gp3_root_volume() -> None:
    run = stack_run("prod")
    for template in run.of_type(LAUNCH_TEMPLATE):
        metadata = template.inputs["metadataOptions"]
        assert metadata["httpTokens"] == "required"
        assert metadata["httpPutResponseHopLimit"] == 1
        (disk,) = template.inputs["blockDeviceMappings"]
        assert disk["ebs"]["encrypted"] == "true"
        assert disk["ebs"]["volumeType"] == "gp3"
    sizes = sorted(t.inputs["blockDeviceMappings"][0]["ebs"]["volumeSize"] for t in run.of_type(LAUNCH_TEMPLATE))
    assert sizes == sorted(p.disk_size_gib for p in run.config.node_pools.values())


def test_ami_type_follows_the_instance_architecture() -> None:
    def graviton_workers(raw: dict[str, Any]) -> None:
        raw["django-eks:nodePools"]["arm"] = {"instanceType": "m6g.large", "minSize": 1, "desiredSize": 1, "maxSize": 2}

    run = run_edited(graviton_workers)
    assert node_group(run, "arm").inputs["amiType"] == "AL2023_ARM_64_STANDARD"
    assert node_group(run, "default").inputs["amiType"] == "AL2023_x86_64_STANDARD"


@pytest.mark.parametrize("stack", STACKS)
def test_nodes_run_only_in_private_subnets(stack: str) -> None:
    run = stack_run(stack)
    private = subnet_ids(run, "private")
    assert len(private) == run.config.network.az_count
    for group in run.of_type(NODE_GROUP):
        assert set(group.inputs["subnetIds"]) == private
