"""Resources with an explicit, account-unique name are replaced delete-first.

The Pulumi engine replaces a resource create-before-delete unless the provider's diff or the
resource's `deleteBeforeReplace` option says otherwise, and the option wins over the provider
(pulumi/pulumi pkg/resource/deploy/step_generator.go @1b59498, lines 2030-2046: "The user can
override the provider's decision by setting the `deleteBeforeReplace` field"). A create-first
replacement of an EKS cluster with the same name fails: "The name must be unique within the AWS
Region and AWS account that you're creating the cluster in" (CreateCluster `name`,
https://docs.aws.amazon.com/eks/latest/APIReference/API_CreateCluster.html); a CloudWatch log
group name likewise (CreateLogGroup: ResourceAlreadyExistsException,
https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_CreateLogGroup.html).

pulumi-aws would usually ask for delete-first by itself: the Terraform bridge sets
DeleteBeforeReplace when an auto-nameable `name` was given explicitly, but only when the
state records which inputs came from defaults (pulumi/pulumi-terraform-bridge
pkg/tfbridge/schema.go @59de6c6, `nameRequiresDeleteBeforeReplace`, lines 193-205: "If there
is no list of properties that were populated using defaults, consider the resource
autonamed"). The option makes it hold whatever the provider answers.
"""

from __future__ import annotations

import pytest

from stack.config.model import PROJECT
from stack.tools.offline import OfflineRun, RecordedResource
from tests.infra.support.stack_files import STACKS, stack_run


def engine_deletes_first(resource: RecordedResource, provider_asks: bool) -> bool:
    """step_generator.go 2043-2046: the option, when set, overrides the provider's diff."""
    return resource.delete_before_replace or provider_asks


def explicitly_named(run: OfflineRun) -> list[RecordedResource]:
    """The cluster's resources whose name the program sets: the control plane and its log group."""
    return [
        run.named("aws:eks/cluster:Cluster", "eks"),
        run.named("aws:cloudwatch/logGroup:LogGroup", "eks-logs"),
    ]


@pytest.mark.parametrize("stack", STACKS)
def test_cluster_and_its_log_group_are_replaced_delete_first(stack: str) -> None:
    run = stack_run(stack)
    cluster, log_group = explicitly_named(run)
    assert cluster.inputs["name"] == f"{PROJECT}-{stack}"
    assert log_group.inputs["name"] == f"/aws/eks/{cluster.inputs['name']}/cluster"
    for resource in (cluster, log_group):
        # Even when the provider's diff does not ask for it (state without the defaults list).
        assert engine_deletes_first(resource, provider_asks=False), resource.name


@pytest.mark.parametrize("stack", STACKS)
def test_auto_named_node_groups_keep_create_before_delete(stack: str) -> None:
    """Node groups are auto-named so that a new group is up before the old one drains."""
    groups = stack_run(stack).of_type("aws:eks/nodeGroup:NodeGroup")
    assert groups
    for group in groups:
        assert "nodeGroupName" not in group.inputs
        assert not engine_deletes_first(group, provider_asks=False), group.name
