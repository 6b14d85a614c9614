"""The AWS-side rules the preflight checks: an id, what the rule says, and where AWS says it.

Every source is listed, with what it says, in infra/stack/data/SOURCES.md ("Preflight rules").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

EC2_API = "https://docs.aws.amazon.com/AWSEC2/latest/APIReference"
IAM_API = "https://docs.aws.amazon.com/IAM/latest/APIReference"
IAM_QUOTAS = "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html"
ELB_API = "https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference"
RDS_API = "https://docs.aws.amazon.com/AmazonRDS/latest/APIReference"
ELASTICACHE_API = "https://docs.aws.amazon.com/AmazonElastiCache/latest/APIReference"
EKS_API = "https://docs.aws.amazon.com/eks/latest/APIReference"
S3_GUIDE = "https://docs.aws.amazon.com/AmazonS3/latest/userguide"
TAGS = "https://docs.aws.amazon.com/tag-editor/latest/userguide/tagging.html"


@dataclass(frozen=True)
class Rule:
    id: str
    what: str
    source: str
    """The URL of the AWS document that states the rule."""


@dataclass(frozen=True)
class Violation:
    rule: Rule
    resource_type: str
    resource_name: str
    value: Any
    detail: str

    def __str__(self) -> str:
        value = self.value if isinstance(self.value, (int, float)) else repr(self.value)
        return (
            f"preflight {self.rule.id}: {self.resource_type} {self.resource_name!r}: {self.detail}: "
            f"{value} (source: {self.rule.source})"
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule.id,
            "resource_type": self.resource_type,
            "resource_name": self.resource_name,
            "value": self.value,
            "detail": self.detail,
            "source": self.rule.source,
        }


_RULES = [
    # --- descriptions -------------------------------------------------------------------
    Rule("ec2-sg-description",
         "security group and rule descriptions: at most 255 of a-z A-Z 0-9, space and "
         "._-:/()#,@[]+=;{}!$* (& too, except in rules that reference a group or prefix list)",
         f"{EC2_API}/API_UserIdGroupPair.html"),
    Rule("iam-description", "IAM role and policy descriptions: at most 1000 of tab, LF, CR, "
         "U+0020-U+007E, U+00A1-U+00FF", f"{IAM_API}/API_CreateRole.html"),
    Rule("kms-key-description", "KMS key descriptions: at most 8192 characters",
         "https://docs.aws.amazon.com/kms/latest/APIReference/API_CreateKey.html"),
    Rule("launch-template-description", "launch template (version) descriptions: at most 255 characters",
         f"{EC2_API}/API_CreateLaunchTemplate.html"),
    # --- names and identifiers ----------------------------------------------------------
    Rule("elb-name", "load balancer and target group names: 1-32 letters, digits or hyphens, not "
         "starting or ending with a hyphen; a load balancer's not starting with 'internal-'",
         f"{ELB_API}/API_CreateLoadBalancer.html"),
    Rule("iam-role-name", "IAM role names: 1-64 of letters, digits and +=,.@_-",
         f"{IAM_API}/API_CreateRole.html"),
    Rule("iam-policy-name", "IAM managed policy names: 1-128 of letters, digits and +=,.@_-",
         f"{IAM_API}/API_CreatePolicy.html"),
    Rule("iam-instance-profile-name", "IAM instance profile names: 1-128 of letters, digits and +=,.@_-",
         f"{IAM_API}/API_CreateInstanceProfile.html"),
    Rule("elasticache-replication-group-id", "replication group ids: 1-40 letters, digits or hyphens, "
         "starting with a letter, no trailing or double hyphen",
         f"{ELASTICACHE_API}/API_CreateReplicationGroup.html"),
    Rule("elasticache-subnet-group-name", "cache subnet group names: 1-255 letters, digits or hyphens",
         f"{ELASTICACHE_API}/API_CreateCacheSubnetGroup.html"),
    Rule("rds-instance-identifier", "DB instance identifiers: 1-63 letters, digits or hyphens, starting "
         "with a letter, no trailing or double hyphen", f"{RDS_API}/API_CreateDBInstance.html"),
    Rule("rds-final-snapshot-identifier", "final DB snapshot identifiers: 1-255 letters, digits or "
         "hyphens, starting with a letter, no trailing or double hyphen",
         f"{RDS_API}/API_DeleteDBInstance.html"),
    Rule("rds-subnet-group-name", "DB subnet group names: 1-255 letters, digits, periods, underscores, "
         "spaces or hyphens, not 'default'", f"{RDS_API}/API_CreateDBSubnetGroup.html"),
    Rule("rds-parameter-group-name", "DB parameter group names: 1-255 letters, digits or hyphens, "
         "starting with a letter, no trailing or double hyphen", f"{RDS_API}/API_CreateDBParameterGroup.html"),
    Rule("eks-cluster-name", "EKS cluster names: 1-100 letters, digits, hyphens or underscores, "
         "starting with a letter or digit", f"{EKS_API}/API_CreateCluster.html"),
    Rule("eks-node-group-name", "EKS node group names: 1-63 letters, digits, hyphens or underscores, "
         "starting with a letter or digit", f"{EKS_API}/API_CreateNodegroup.html"),
    Rule("launch-template-name", "launch template names: 3-128 of letters, digits and ()./_-",
         f"{EC2_API}/API_CreateLaunchTemplate.html"),
    Rule("ecr-repository-name", "ECR repository names: 2-256 lowercase letters and digits, "
         "separated by single . _ - or /",
         "https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_CreateRepository.html"),
    Rule("s3-bucket-name", "S3 bucket names: 3-63 lowercase letters, digits, periods or hyphens, "
         "a letter or digit first and last, no two adjacent periods, not an IP address",
         f"{S3_GUIDE}/bucketnamingrules.html"),
    Rule("s3-bucket-name-reserved", "S3 bucket names must not start with xn--, sthree- or "
         "amzn-s3-demo-, nor end with -s3alias, --ol-s3, .mrap or --x-s3",
         f"{S3_GUIDE}/bucketnamingrules.html"),
    Rule("s3-bucket-name-https", "S3 bucket names used over HTTPS with virtual-hosted-style "
         "addressing (presigned URLs) have no periods", f"{S3_GUIDE}/VirtualHosting.html"),
    Rule("kms-alias-name", "KMS alias names: 'alias/' then letters, digits and /_-, at most 256, "
         "not 'alias/aws/'", "https://docs.aws.amazon.com/kms/latest/APIReference/API_CreateAlias.html"),
    Rule("secret-name", "Secrets Manager secret names: 1-512 of letters, digits and /_+=.@-",
         "https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_CreateSecret.html"),
    Rule("log-group-name", "CloudWatch log group names: 1-512 of letters, digits and ._-/#",
         "https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_CreateLogGroup.html"),
    # --- tags ---------------------------------------------------------------------------
    Rule("tag-count", "at most 50 user tags per resource", TAGS),
    Rule("tag-key-length", "tag keys: 1-128 characters", TAGS),
    Rule("tag-value-length", "tag values: at most 256 characters", TAGS),
    Rule("tag-reserved-prefix", "tag keys and values must not start with 'aws:' (any case)", TAGS),
    # --- IAM policy documents -----------------------------------------------------------
    Rule("iam-managed-policy-size", "a managed policy document: at most 6,144 characters, "
         "whitespace not counted", IAM_QUOTAS),
    Rule("iam-inline-policy-size", "a role's inline policies together: at most 10,240 characters, "
         "whitespace not counted", IAM_QUOTAS),
    Rule("iam-trust-policy-size", "a role trust policy: at most 2,048 characters (the default quota), "
         "whitespace not counted", IAM_QUOTAS),
    Rule("iam-policy-charset", "policy documents: only tab, LF, CR and U+0020-U+00FF", IAM_QUOTAS),
    # --- placement ------------------------------------------------------------------------
    Rule("eks-zone-id", "EKS cluster subnets must not be in zone IDs use1-az3, usw1-az2, cac1-az3",
         "https://docs.aws.amazon.com/eks/latest/userguide/network-reqs.html#cluster-subnets"),
    # --- names across resources and stacks -----------------------------------------------
    Rule("unique-name", "names that AWS keeps unique per account or region are given to one resource",
         f"{ELB_API}/API_CreateTargetGroup.html"),
    Rule("stack-qualified-name", "an explicit name unique per account or region carries the stack "
         "name, so two stacks in one account do not collide",
         "https://www.pulumi.com/docs/iac/concepts/resources/names/"),
    # --- deletion ---------------------------------------------------------------------------
    Rule("rds-final-snapshot-per-deletion", "a final snapshot identifier embeds a random value "
         "generated with the instance (RDS refuses an existing name: DBSnapshotAlreadyExists)",
         f"{RDS_API}/API_DeleteDBInstance.html"),
    Rule("ecr-destroy-with-images", "an ECR repository is deleted with its images (forceDelete) or "
         "kept on purpose (retainOnDelete); else destroy fails with RepositoryNotEmptyException",
         "https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_DeleteRepository.html"),
]

RULES: dict[str, Rule] = {rule.id: rule for rule in _RULES}
