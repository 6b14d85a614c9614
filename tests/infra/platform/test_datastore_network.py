"""Both datastores sit in their own subnet group of the private subnets, behind their own security
group that admits their port from the cluster alone (stack.platform.datastore_network)."""

from __future__ import annotations

import pytest

from stack.platform.cache import REDIS_PORT
from stack.platform.database import POSTGRES_PORT
from stack.tools.offline import PLACEHOLDER, RecordedResource
from tests.infra.support.stack_files import STACKS, stack_run

INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"



def resource_id(resource: RecordedResource) -> str:
    """The ID the offline engine gives a resource (`stack.tools.offline.OfflineMocks.new_resource`)."""
    return f"{resource.name}-{PLACEHOLDER}-id"


DATASTORES = [
    # (datastore type, its resource name, subnet group type, the datastore's subnet group and
    # security group inputs, port)
    (
        "aws:elasticache/replicationGroup:ReplicationGroup",
        "redis",
        "aws:elasticache/subnetGroup:SubnetGroup",
        "subnetGroupName",
        "securityGroupIds",
        REDIS_PORT,
    ),
    ("aws:rds/instance:Instance", "postgres", "aws:rds/subnetGroup:SubnetGroup", "dbSubnetGroupName", "vpcSecurityGroupIds", POSTGRES_PORT),
]


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize(("type_", "name", "subnet_group_type", "subnet_input", "groups_input", "port"), DATASTORES)
def test_datastore_is_in_the_private_subnets_behind_a_group_only_the_cluster_passes(
    stack: str, type_: str, name: str, subnet_group_type: str, subnet_input: str, groups_input: str, port: int
) -> None:
    run = stack_run(stack)
    datastore = run.named(type_, name)
    subnet_group = run.named(subnet_group_type, f"{name}-subnets")
    assert datastore.inputs[subnet_input] == subnet_group.outputs["name"]
    private = {resource_id(s) for s in run.of_type("aws:ec2/subnet:Subnet") if "-private-" in s.name}
    assert private and set(subnet_group.inputs["subnetIds"]) == private

    security_group = run.named("aws:ec2/securityGroup:SecurityGroup", f"{name}-sg")
    (group_id,) = datastore.inputs[groups_input]
    assert group_id == resource_id(security_group)
    rules = [r.inputs for r in run.of_type(INGRESS) if r.inputs["securityGroupId"] == group_id]
    cluster_group = run.named("aws:eks/cluster:Cluster", "eks").outputs["vpcConfig"]["clusterSecurityGroupId"]
    assert [(r["ipProtocol"], r["fromPort"], r["toPort"], r["referencedSecurityGroupId"]) for r in rules] == [
        ("tcp", port, port, cluster_group)
    ]
