"""The physical names AWS will see, and the naming rules of each resource type the program uses.

A resource given no name is auto-named by Pulumi: its logical name, a hyphen and 7 random
characters (https://www.pulumi.com/docs/iac/concepts/resources/names/#autonaming); those 8
characters count against AWS's limit. A `namePrefix` gets 26 characters from the AWS provider.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from stack.tools.offline import RecordedResource

AUTONAME_SUFFIX = "-" + "0a1b2c3"
"""What Pulumi appends to an auto-named resource (a hyphen and 7 random lowercase hex characters)."""
PREFIX_SUFFIX_LENGTH = 26
"""What the AWS provider appends to a `namePrefix` (a timestamp and a counter, digits)."""

_ALNUM_HYPHEN_LETTER_FIRST = r"[A-Za-z](?:-?[A-Za-z0-9])*"
"""Letters, digits, single hyphens; a letter first; no trailing hyphen (RDS, ElastiCache ids)."""

Scope = Literal["account", "region", "partition"]


@dataclass(frozen=True)
class NameRule:
    rule: str
    field: str
    prefix_field: str | None
    min_length: int
    max_length: int
    pattern: str
    autonamed: bool
    unique: Scope | None
    """Where AWS keeps the name unique; None where it is not a name AWS keys on."""
    case_insensitive: bool = False
    forbidden_prefixes: tuple[str, ...] = ()
    forbidden: tuple[str, ...] = ()
    forbidden_suffixes: tuple[str, ...] = ()


_IAM = r"[\w+=,.@-]+"
NAME_RULES: dict[str, list[NameRule]] = {
    "aws:lb/loadBalancer:LoadBalancer": [
        NameRule("elb-name", "name", "namePrefix", 1, 32, r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?", True,
                 "region", forbidden_prefixes=("internal-",)),
    ],
    "aws:lb/targetGroup:TargetGroup": [
        NameRule("elb-name", "name", "namePrefix", 1, 32, r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?", True, "region"),
    ],
    "aws:iam/role:Role": [NameRule("iam-role-name", "name", "namePrefix", 1, 64, _IAM, True, "account", True)],
    "aws:iam/policy:Policy": [NameRule("iam-policy-name", "name", "namePrefix", 1, 128, _IAM, True, "account")],
    "aws:iam/instanceProfile:InstanceProfile": [
        NameRule("iam-instance-profile-name", "name", "namePrefix", 1, 128, _IAM, True, "account", True),
    ],
    "aws:elasticache/replicationGroup:ReplicationGroup": [
        NameRule("elasticache-replication-group-id", "replicationGroupId", None, 1, 40,
                 _ALNUM_HYPHEN_LETTER_FIRST, True, "region", True),
    ],
    "aws:elasticache/subnetGroup:SubnetGroup": [
        NameRule("elasticache-subnet-group-name", "name", None, 1, 255, r"[A-Za-z0-9-]+", True, "region", True),
    ],
    "aws:rds/instance:Instance": [
        NameRule("rds-instance-identifier", "identifier", "identifierPrefix", 1, 63, _ALNUM_HYPHEN_LETTER_FIRST,
                 True, "region", True),
        NameRule("rds-final-snapshot-identifier", "finalSnapshotIdentifier", None, 1, 255,
                 _ALNUM_HYPHEN_LETTER_FIRST, False, "region", True),
    ],
    "aws:rds/subnetGroup:SubnetGroup": [
        NameRule("rds-subnet-group-name", "name", "namePrefix", 1, 255, r"[A-Za-z0-9._ -]+", True, "region", True,
                 forbidden=("default",)),
    ],
    "aws:rds/parameterGroup:ParameterGroup": [
        NameRule("rds-parameter-group-name", "name", "namePrefix", 1, 255, _ALNUM_HYPHEN_LETTER_FIRST, True,
                 "region", True),
    ],
    "aws:eks/cluster:Cluster": [
        NameRule("eks-cluster-name", "name", None, 1, 100, r"[0-9A-Za-z][A-Za-z0-9_-]*", True, "region"),
    ],
    "aws:eks/nodeGroup:NodeGroup": [
        # Unique within its cluster only: not a name two stacks can collide on.
        NameRule("eks-node-group-name", "nodeGroupName", "nodeGroupNamePrefix", 1, 63,
                 r"[0-9A-Za-z][A-Za-z0-9_-]*", True, None),
    ],
    "aws:ec2/launchTemplate:LaunchTemplate": [
        NameRule("launch-template-name", "name", "namePrefix", 3, 128, r"[a-zA-Z0-9().\-/_]+", True, "region"),
    ],
    "aws:ecr/repository:Repository": [
        NameRule("ecr-repository-name", "name", None, 2, 256,
                 r"(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*", True, "region"),
    ],
    "aws:s3/bucket:Bucket": [
        # Not an IP address, no two adjacent periods; names are unique in the partition.
        NameRule("s3-bucket-name", "bucket", "bucketPrefix", 3, 63,
                 r"(?!\d{1,3}(?:\.\d{1,3}){3}$)(?!.*\.\.)[a-z0-9][a-z0-9.-]*[a-z0-9]", True, "partition"),
        NameRule("s3-bucket-name-reserved", "bucket", "bucketPrefix", 0, 10_000, r".*", True, None,
                 forbidden_prefixes=("xn--", "sthree-", "amzn-s3-demo-"),
                 forbidden_suffixes=("-s3alias", "--ol-s3", ".mrap", "--x-s3")),
        # Presigned URLs are virtual-hosted-style: https://<bucket>.s3.<region>.amazonaws.com
        # fails certificate validation when the bucket name has a period.
        NameRule("s3-bucket-name-https", "bucket", "bucketPrefix", 0, 10_000, r"[^.]*", True, None),
    ],
    "aws:kms/alias:Alias": [
        NameRule("kms-alias-name", "name", "namePrefix", 7, 256, r"alias/[a-zA-Z0-9/_-]+", False, "region",
                 forbidden_prefixes=("alias/aws/",)),
    ],
    "aws:secretsmanager/secret:Secret": [
        NameRule("secret-name", "name", "namePrefix", 1, 512, r"[A-Za-z0-9/_+=.@-]+", True, "region"),
    ],
    "aws:cloudwatch/logGroup:LogGroup": [
        NameRule("log-group-name", "name", "namePrefix", 1, 512, r"[.\-_/#A-Za-z0-9]+", True, "region"),
    ],
}


@dataclass(frozen=True)
class PhysicalName:
    value: str
    how: Literal["explicit", "prefix", "auto"]

    def describe(self) -> str:
        if self.how == "auto":
            return "auto-named (the logical name, a hyphen and 7 random characters)"
        if self.how == "prefix":
            return f"named from a prefix (plus {PREFIX_SUFFIX_LENGTH} generated characters)"
        return "named explicitly"


def physical_name(resource: RecordedResource, rule: NameRule) -> PhysicalName | None:
    """The name AWS receives, with generated parts standing for what a real run generates."""
    value = resource.inputs.get(rule.field)
    if isinstance(value, str):
        return PhysicalName(value, "explicit")
    if rule.prefix_field and isinstance(resource.inputs.get(rule.prefix_field), str):
        return PhysicalName(resource.inputs[rule.prefix_field] + "0" * PREFIX_SUFFIX_LENGTH, "prefix")
    if rule.autonamed:
        return PhysicalName(resource.name + AUTONAME_SUFFIX, "auto")
    return None


def name_problem(name: str, rule: NameRule) -> str | None:
    """What is wrong with `name` under `rule`, or None."""
    if not rule.min_length <= len(name) <= rule.max_length:
        return f"{len(name)} characters, allowed {rule.min_length}-{rule.max_length}"
    if not re.fullmatch(rule.pattern, name):
        return "characters or shape not allowed"
    for prefix in rule.forbidden_prefixes:
        if name.lower().startswith(prefix):
            return f"must not start with {prefix!r}"
    for suffix in rule.forbidden_suffixes:
        if name.lower().endswith(suffix):
            return f"must not end with {suffix!r}"
    if name.lower() in rule.forbidden:
        return "a reserved name"
    return None
