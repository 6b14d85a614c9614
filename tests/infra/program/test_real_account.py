"""What a real AWS account refuses although every mock accepts it (issue: real-account fidelity).

Each test here failed on the program before the fix it guards.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from stack.tools.offline import OfflineRun, RecordedResource
from stack.model.zones import EKS_DISALLOWED_ZONE_IDS, ZoneSelectionError, eks_zone_ids
from tests.infra.support.stack_files import STACKS, run_edited, stack_run

SUBNET = "aws:ec2/subnet:Subnet"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
RULES = ("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")
RDS = "aws:rds/instance:Instance"
RANDOM_ID = "random:index/randomId:RandomId"

# EC2 API reference, CreateSecurityGroup GroupDescription and UserIdGroupPair Description:
# up to 255 of a-z, A-Z, 0-9, spaces and ._-:/()#,@[]+=;{}!$* (IpRange also allows &).
EC2_DESCRIPTION = re.compile(r"[a-zA-Z0-9 ._\-:/()#,@\[\]+=;{}!$*]{0,255}")


def noop(raw: dict[str, Any]) -> None:
    return None


@pytest.mark.parametrize("stack", STACKS)
def test_security_group_and_rule_descriptions_use_only_what_ec2_accepts(stack: str) -> None:
    run = stack_run(stack)
    described = run.of_type(SECURITY_GROUP) + [r for t in RULES for r in run.of_type(t)]
    assert len(described) >= 6
    for resource in described:
        description = resource.inputs.get("description", "")
        assert EC2_DESCRIPTION.fullmatch(description), (resource.name, description)


def subnet_zone_ids(run: OfflineRun) -> dict[str, str]:
    return {s.name: s.inputs.get("availabilityZoneId", "") for s in run.of_type(SUBNET)}


def test_cluster_subnets_avoid_the_zone_ids_eks_refuses_whatever_the_names() -> None:
    # An account in which the first zone by name is use1-az3, which EKS refuses.
    account = [("us-east-1a", "use1-az3"), ("us-east-1b", "use1-az1"), ("us-east-1c", "use1-az5"),
               ("us-east-1d", "use1-az2"), ("us-east-1e", "use1-az4")]
    run = run_edited(noop, base="prod", zones=account)
    zones = subnet_zone_ids(run)
    assert set(zones.values()) == {"use1-az1", "use1-az2", "use1-az4"}
    cluster = run.named("aws:eks/cluster:Cluster", "eks").inputs
    cluster_zones = {zones[subnet.removesuffix("-placeholder-id")] for subnet in cluster["vpcConfig"]["subnetIds"]}
    assert not cluster_zones & EKS_DISALLOWED_ZONE_IDS
    # Chosen by ID, the zones are the same physical zones in an account that names them otherwise.
    other = [(f"us-east-1{letter}", zone) for letter, (_, zone) in zip("edcba", account, strict=True)]
    assert set(subnet_zone_ids(run_edited(noop, base="prod", zones=other)).values()) == set(zones.values())


def test_too_few_usable_zones_is_an_error_naming_az_count() -> None:
    with pytest.raises(ZoneSelectionError, match=r"network\.azCount: 3 zones asked for.*refused: use1-az3"):
        eks_zone_ids(["use1-az1", "use1-az3", "use1-az2"], 3)
    assert eks_zone_ids(["use1-az6", "use1-az3", "use1-az2", "use1-az1"], 3) == ["use1-az1", "use1-az2", "use1-az6"]


def test_destroy_deletes_the_registry_with_its_images() -> None:
    # `pulumi destroy` otherwise fails with RepositoryNotEmptyException once an image is pushed.
    repository = stack_run("dev").named("aws:ecr/repository:Repository", "service")
    assert repository.inputs["forceDelete"] is True
    assert not repository.retain_on_delete


def final_snapshot(run: OfflineRun) -> tuple[str, RecordedResource]:
    instance = run.named(RDS, "postgres").inputs
    assert instance["skipFinalSnapshot"] is False
    return instance["finalSnapshotIdentifier"], run.named(RANDOM_ID, "postgres-final-snapshot")


def test_final_snapshot_name_is_unique_per_stack() -> None:
    protected = [s for s in STACKS if stack_run(s).config.database.deletion_protection]
    assert len(protected) >= 2
    names = {s: final_snapshot(stack_run(s))[0] for s in protected}
    assert len(set(names.values())) == len(protected)
    for stack, name in names.items():
        assert name.startswith(f"django-eks-{stack}-postgres-final-")


def test_final_snapshot_name_changes_with_each_instance_and_so_each_deletion() -> None:
    run = stack_run("prod")
    name, suffix = final_snapshot(run)
    # The suffix is generated with the instance's component and deleted with it: the next
    # instance (after a destroy) gets a new one.
    assert re.fullmatch(r"django-eks-prod-postgres-final-[0-9a-f]{8}", name)
    assert suffix.urn in run.named(RDS, "postgres").dependencies
    assert suffix.parent == run.named("django-eks:platform:Database", "postgres").urn
    # An update that replaces the instance changes one of these inputs, which replaces the
    # suffix in the same update: the replacement never reuses the deleted one's snapshot name.
    instance = run.named(RDS, "postgres").inputs
    keepers = suffix.inputs["keepers"]
    assert set(keepers) == {"engine", "dbName", "username", "storageEncrypted"}
    for key, value in keepers.items():
        assert value == (str(instance[key]).lower() if isinstance(instance[key], bool) else instance[key])
