"""The preflight: clean on every stack file, and each rule caught on a resource made to break it."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from stack.tools.offline import REPO_ROOT, OfflineRun, RecordedResource
from stack.tools.plan.cli import main as plan_main
from stack.tools.preflight import RULES, preflight
from tests.infra.support.stack_files import STACKS, stack_run

Edit = Callable[[OfflineRun], OfflineRun]


@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_file_passes_the_preflight(stack: str) -> None:
    run = stack_run(stack)
    assert len(run.resources) > 50
    assert [str(v) for v in preflight(run)] == []


# --- one failing case per rule ---------------------------------------------------------------


def edit(type_: str, logical: str, /, rename: str | None = None, **inputs: Any) -> Edit:
    """The run with one registered resource's inputs changed (None removes an input)."""

    def apply(run: OfflineRun) -> OfflineRun:
        target = run.named(type_, logical)
        merged = {k: v for k, v in {**target.inputs, **inputs}.items() if v is not None}
        changed = dataclasses.replace(target, inputs=merged, name=rename or target.name)
        return dataclasses.replace(run, resources=[changed if r is target else r for r in run.resources])

    return apply


def add(type_: str, logical: str, /, **inputs: Any) -> Edit:
    """The run with one more registered resource."""

    def apply(run: OfflineRun) -> OfflineRun:
        urn = f"urn:pulumi:{run.stack}::django-eks::{type_}::{logical}"
        extra = RecordedResource(type_, logical, inputs, True, urn, "", [], [])
        return dataclasses.replace(run, resources=[*run.resources, extra])

    return apply


def both(*edits: Edit) -> Edit:
    def apply(run: OfflineRun) -> OfflineRun:
        for each in edits:
            run = each(run)
        return run

    return apply


def policy(statements: int) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": [f"ec2:DescribeThing{i}"], "Resource": f"arn:aws:ec2:*:*:thing/{i:06d}"}
        for i in range(statements)
    ]}, indent=4)


SG = "aws:ec2/securityGroup:SecurityGroup"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
ROLE = "aws:iam/role:Role"
POLICY = "aws:iam/policy:Policy"
VPC = "aws:ec2/vpc:Vpc"
RDS = "aws:rds/instance:Instance"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
BUCKET = "aws:s3/bucket:Bucket"

CASES = [
    ("ec2-sg-description", "dev", edit(INGRESS, "redis-sg-in-6379", description="Port 6379 from the cluster's nodes"),
     f"{INGRESS} 'redis-sg-in-6379': description contains \"'\", which EC2 refuses"),
    ("ec2-sg-description", "dev", edit(INGRESS, "postgres-sg-in-5432", description="Nodes & pods"),
     "description contains '&', which EC2 refuses"),
    ("ec2-sg-description", "dev", edit(SG, "web-alb", description="x" * 256),
     f"{SG} 'web-alb': description has 256 characters, allowed 255"),
    ("iam-description", "dev", edit(ROLE, "app-lb-controller", description="Controller \u2192 ALB"),
     f"{ROLE} 'app-lb-controller': description of 16 characters outside IAM's limit or character set"),
    ("kms-key-description", "dev", edit("aws:kms/key:Key", "eks-secrets", description="k" * 8193),
     "description has 8193 characters, allowed 8192"),
    ("launch-template-description", "dev",
     edit("aws:ec2/launchTemplate:LaunchTemplate", "eks-default-lt", description="d" * 256),
     "'eks-default-lt': description has 256 characters, allowed 255"),
    ("elb-name", "dev", edit("aws:lb/targetGroup:TargetGroup", "web-tg", name="web-target-group-of-the-django-app"),
     "'web-tg': name named explicitly: 34 characters, allowed 1-32: 'web-target-group-of-the-django-app'"),
    ("elb-name", "dev", edit("aws:lb/loadBalancer:LoadBalancer", "web-alb", rename="web-application-load-balancer"),
     "name auto-named (the logical name, a hyphen and 7 random characters): 37 characters, allowed 1-32"),
    ("elb-name", "dev", edit("aws:lb/loadBalancer:LoadBalancer", "web-alb", name="internal-web"),
     "must not start with 'internal-'"),
    ("iam-role-name", "dev", edit(ROLE, "eks-node", name="r" * 65), f"{ROLE} 'eks-node': name named explicitly: 65 characters, allowed 1-64"),
    ("iam-policy-name", "dev", edit(POLICY, "app-lb-controller", name="lb controller"),
     "name named explicitly: characters or shape not allowed: 'lb controller'"),
    ("iam-instance-profile-name", "dev", add("aws:iam/instanceProfile:InstanceProfile", "nodes", name="p" * 129),
     "'nodes': name named explicitly: 129 characters, allowed 1-128"),
    ("elasticache-replication-group-id", "dev",
     edit("aws:elasticache/replicationGroup:ReplicationGroup", "redis", replicationGroupId="celery--broker"),
     "replicationGroupId named explicitly: characters or shape not allowed: 'celery--broker'"),
    ("elasticache-replication-group-id", "dev",
     edit("aws:elasticache/replicationGroup:ReplicationGroup", "redis", rename="celery-broker-and-django-cache-xy"),
     "replicationGroupId auto-named (the logical name, a hyphen and 7 random characters): 41 characters"),
    ("elasticache-subnet-group-name", "dev",
     edit("aws:elasticache/subnetGroup:SubnetGroup", "redis-subnets", name="redis_subnets"),
     "characters or shape not allowed: 'redis_subnets'"),
    ("rds-instance-identifier", "dev", edit(RDS, "postgres", identifier="1postgres"),
     f"{RDS} 'postgres': identifier named explicitly: characters or shape not allowed: '1postgres'"),
    ("rds-final-snapshot-identifier", "prod",
     lambda run: edit(RDS, "postgres", finalSnapshotIdentifier=run.named(RDS, "postgres").inputs[
         "finalSnapshotIdentifier"].replace("-final-", "--final-"))(run),
     "finalSnapshotIdentifier named explicitly: characters or shape not allowed: 'django-eks-prod-postgres--final-"),
    ("rds-subnet-group-name", "dev", edit("aws:rds/subnetGroup:SubnetGroup", "postgres-subnets", name="default"),
     "name named explicitly: a reserved name: 'default'"),
    ("rds-parameter-group-name", "dev", add("aws:rds/parameterGroup:ParameterGroup", "postgres-params", name="pg--17"),
     "'postgres-params': name named explicitly: characters or shape not allowed: 'pg--17'"),
    ("eks-cluster-name", "dev", edit("aws:eks/cluster:Cluster", "eks", name="django-eks-dev-" + "x" * 90),
     "'eks': name named explicitly: 105 characters, allowed 1-100"),
    ("eks-node-group-name", "dev", edit("aws:eks/nodeGroup:NodeGroup", "eks-default", nodeGroupNamePrefix="n" * 40),
     "nodeGroupName named from a prefix (plus 26 generated characters): 66 characters, allowed 1-63"),
    ("launch-template-name", "dev", edit("aws:ec2/launchTemplate:LaunchTemplate", "eks-default-lt", name="lt"),
     "'eks-default-lt': name named explicitly: 2 characters, allowed 3-128"),
    ("ecr-repository-name", "dev", edit("aws:ecr/repository:Repository", "service", name="Django-Service"),
     "'service': name named explicitly: characters or shape not allowed: 'Django-Service'"),
    ("s3-bucket-name", "dev", edit(BUCKET, "files-bucket", bucket="Django-Eks-Dev-Files"),
     f"{BUCKET} 'files-bucket': bucket named explicitly: characters or shape not allowed: 'Django-Eks-Dev-Files'"),
    ("s3-bucket-name", "dev", edit(BUCKET, "files-bucket", bucket="django-eks-dev-" + "f" * 49),
     "bucket named explicitly: 64 characters, allowed 3-63"),
    ("s3-bucket-name", "dev", edit(BUCKET, "files-bucket", bucket="django-eks-dev-files-"),
     "characters or shape not allowed: 'django-eks-dev-files-'"),
    ("s3-bucket-name-reserved", "dev", edit(BUCKET, "files-bucket", bucket="sthree-django-eks-dev"),
     "must not start with 'sthree-'"),
    ("s3-bucket-name-reserved", "dev", edit(BUCKET, "files-bucket", bucket="django-eks-dev-s3alias"),
     "must not end with '-s3alias'"),
    ("s3-bucket-name-https", "dev", edit(BUCKET, "files-bucket", bucket="files.django-eks-dev"),
     "bucket named explicitly: characters or shape not allowed: 'files.django-eks-dev'"),
    ("kms-alias-name", "dev", add("aws:kms/alias:Alias", "secrets-alias", name="alias/aws/dev-secrets"),
     "must not start with 'alias/aws/'"),
    ("secret-name", "dev", add("aws:secretsmanager/secret:Secret", "app-secret", name="django eks/dev"),
     "'app-secret': name named explicitly: characters or shape not allowed: 'django eks/dev'"),
    ("log-group-name", "dev", edit(LOG_GROUP, "eks-logs", name="/aws/eks/django eks dev/cluster"),
     "'eks-logs': name named explicitly: characters or shape not allowed"),
    ("tag-count", "dev", edit(VPC, "net-vpc", tags={f"team-{i}": "x" for i in range(51)}),
     f"{VPC} 'net-vpc': tags has too many tags (allowed 50): 51"),
    ("tag-key-length", "dev", edit(VPC, "net-vpc", tags={"k" * 129: "x"}), "tags key of 129 characters (allowed 1-128)"),
    ("tag-value-length", "dev",
     edit("aws:ec2/launchTemplate:LaunchTemplate", "eks-default-lt",
          tagSpecifications=[{"resourceType": "instance", "tags": {"note": "v" * 257}}]),
     "tagSpecifications[0].tags['note'] value of 257 characters (allowed 256)"),
    ("tag-reserved-prefix", "dev", edit(VPC, "net-vpc", tags={"aws:owner": "me"}), "tags uses the reserved 'aws:' prefix: 'aws:owner=me'"),
    ("iam-managed-policy-size", "dev", edit(POLICY, "app-lb-controller", policy=policy(80)),
     f"{POLICY} 'app-lb-controller': policy document size (characters, whitespace not counted) above 6,144"),
    ("iam-inline-policy-size", "dev",
     both(add("aws:iam/rolePolicy:RolePolicy", "node-extra-1", role="eks-node-placeholder", policy=policy(60)),
          add("aws:iam/rolePolicy:RolePolicy", "node-extra-2", role="eks-node-placeholder", policy=policy(60))),
     "inline policies of role 'eks-node' together above 10,240"),
    ("iam-trust-policy-size", "dev", edit(ROLE, "eks-role", assumeRolePolicy=policy(25)),
     f"{ROLE} 'eks-role': trust policy size above the default quota of 2,048"),
    ("iam-policy-charset", "dev",
     edit(POLICY, "app-lb-controller", policy=json.dumps({"Version": "2012-10-17", "Statement": [
         {"Sid": "Controller\u2019s", "Effect": "Allow", "Action": "ec2:Describe*", "Resource": "*"}]},
         ensure_ascii=False)),
     "policy contains characters IAM refuses: '\u2019'"),
    ("eks-zone-id", "prod", edit("aws:ec2/subnet:Subnet", "net-private-2", availabilityZoneId="use1-az3"),
     "'eks': cluster subnet 'net-private-2' is in a zone EKS refuses for clusters: 'use1-az3'"),
    ("eks-zone-id", "dev",
     edit("aws:ec2/subnet:Subnet", "net-private-0", availabilityZoneId=None, availabilityZone="us-east-1b"),
     "cluster subnet 'net-private-0' is in a zone EKS refuses for clusters: 'use1-az3'"),
    ("unique-name", "dev", add(LOG_GROUP, "eks-logs-again", name="/aws/eks/django-eks-dev/cluster"),
     f"{LOG_GROUP} 'eks-logs-again': name also given to {LOG_GROUP} 'eks-logs'; AWS keeps it unique per region"),
    ("stack-qualified-name", "dev", edit("aws:eks/cluster:Cluster", "eks", name="django-eks"),
     "'eks': name is unique per region but does not name stack 'dev'"),
    ("rds-final-snapshot-per-deletion", "prod",
     edit(RDS, "postgres", finalSnapshotIdentifier="django-eks-prod-postgres-final"),
     f"{RDS} 'postgres': finalSnapshotIdentifier is fixed"),
    ("ecr-destroy-with-images", "dev", edit("aws:ecr/repository:Repository", "service", forceDelete=None),
     "'service': neither forceDelete nor retainOnDelete: destroy fails once an image is pushed"),
]


@pytest.mark.parametrize(("rule", "stack", "change", "expected"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_each_rule_catches_a_resource_made_to_break_it(rule: str, stack: str, change: Edit, expected: str) -> None:
    violations = preflight(change(stack_run(stack)))
    # An explicit name without the stack's name also breaks stack-qualified-name.
    also = {"stack-qualified-name"} - {rule}
    assert {v.rule.id for v in violations} - also == {rule}, [str(v) for v in violations]
    (message,) = [str(v) for v in violations if v.rule.id == rule]
    assert message.startswith(f"preflight {rule}: ")
    assert expected in message, message
    assert message.endswith(f"(source: {RULES[rule].source})")


def test_what_aws_accepts_passes() -> None:
    accepted = both(
        # "&" is allowed in a rule for a CIDR (IpRange), refused in one that references a group.
        edit(INGRESS, "web-alb-in-80", description="HTTP & redirects from the internet"),
        # A repository kept on purpose is not deleted by destroy, so its images do not block it.
        edit("aws:ecr/repository:Repository", "service", forceDelete=None),
        lambda run: dataclasses.replace(run, resources=[
            dataclasses.replace(r, retain_on_delete=True) if r.type == "aws:ecr/repository:Repository" else r
            for r in run.resources
        ]),
        # 50 tags is the most allowed.
        edit(VPC, "net-vpc", tags={f"team-{i}": "x" for i in range(50)}),
        # A 32-character target group name is the most allowed.
        edit("aws:lb/targetGroup:TargetGroup", "web-tg", name="dev-" + "t" * 28),
    )
    assert [str(v) for v in preflight(accepted(stack_run("dev")))] == []


def test_every_rule_has_a_failing_case_and_a_listed_source() -> None:
    assert {case[0] for case in CASES} == set(RULES)
    sources = (REPO_ROOT / "infra/stack/data/SOURCES.md").read_text()
    for rule in RULES.values():
        assert rule.source in sources, rule.id
        assert f"`{rule.id}`" in sources, rule.id


# --- end to end: a stack file that breaks a rule fails `make plan` -------------------------------


def test_a_stack_file_breaking_a_rule_makes_the_plan_exit_1_naming_resource_rule_and_source(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The stack name goes into the EKS cluster name (django-eks-<stack>), limited to 100 characters.
    stack = "exp-" + "very-long-experiment-name-" * 3 + "x" * 12
    (tmp_path / "infra").symlink_to(REPO_ROOT / "infra", target_is_directory=True)
    shutil.copy(REPO_ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    shutil.copy(REPO_ROOT / "Pulumi.dev.yaml", tmp_path / f"Pulumi.{stack}.yaml")
    # `make plan STACK=<stack>`, in-process (dev's plan is clean: test_every_stack_file_passes_the_preflight).
    code = plan_main(["--stack", stack, "--root", str(tmp_path), "--no-results"])
    out = capsys.readouterr().out
    assert code == 1, out[-2000:]
    errors = [line.strip() for line in out.splitlines() if line.strip().startswith("ERROR")]
    # The same name breaks S3's 63 characters in the files bucket (django-eks-<stack>-<8 hex>).
    assert len(errors) == 2, errors
    (bucket_error,) = [e for e in errors if "preflight s3-bucket-name: aws:s3/bucket:Bucket 'files-bucket'" in e]
    errors.remove(bucket_error)
    assert re.fullmatch(
        rf"ERROR +preflight eks-cluster-name: aws:eks/cluster:Cluster 'eks': name named explicitly: "
        rf"{len('django-eks-' + stack)} characters, allowed 1-100: 'django-eks-{stack}' "
        rf"\(source: https://docs\.aws\.amazon\.com/eks/latest/APIReference/API_CreateCluster\.html\)",
        errors[0],
    ), errors[0]
