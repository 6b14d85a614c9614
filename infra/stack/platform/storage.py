"""The `Storage` component: the private S3 bucket of uploads and results, and the AWS
identities of the pods that use it.

Uploads live under `uploads/`, results under `results/`. Each pod kind gets its own IAM role,
assumed through EKS Pod Identity (an association of the role with the pod's service account
in the app namespace), and allowed only what that pod does:

    web         puts uploads (and deletes the one it stored for a job it then refused),
                reads results (the presigned URLs it hands out are signed with its
                credentials, so S3 checks GetObject against this role)
    worker      reads uploads, writes results
    reconciler  deletes both when a job expires (the reconciler CronJob runs the expiry)
    migrate     puts both: the migration that moved the files out of PostgreSQL writes the
                bytes of an existing deployment's jobs into the bucket

web and worker may also list the bucket: HeadBucket, the cheap start-up check that the bucket
exists and the credentials work, needs s3:ListBucket, and without it a missing key answers
403 instead of 404.

That is the demo's layout. An app (`app` section) with `usesFilesBucket: true` lays out the
bucket as it likes: its web, worker and migrate pods may read, write, delete and list any key.
Without `usesFilesBucket` its pods get no role at all, and no bucket variable.

The document builders are plain functions, so tests evaluate them without the engine.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from stack.config.model import PROJECT, StackConfig, StorageConfig
from stack.platform.iam import trust_policy
from stack.config.names import MIGRATE, WEB, WORKER

TYPE = "django-eks:platform:Storage"

UPLOADS = "uploads/"
RESULTS = "results/"

RECONCILER = "reconciler"
"""The service account of the reconciler CronJob (service reliability work), which expires
jobs and their files."""

LIFECYCLE_MARGIN_DAYS = 1
"""S3 expires an object at the first midnight UTC after creation + Days, and may remove it
later still; one day more than the retention lets the app's expiry (which deletes the job's
row and both files together) always run first. The rule is a backstop for files no row points
to (an upload whose job was never created, a result written after its job expired)."""

ABORT_INCOMPLETE_MULTIPART_DAYS = 1
"""boto3 switches to multipart above 8 MiB; parts of an upload that never completed are
billed until aborted."""

PAGE = "https://docs.aws.amazon.com/AmazonS3/latest/userguide"


@dataclass(frozen=True)
class PodAccess:
    """What one pod kind may do on the bucket: actions per key prefix, and bucket-level actions."""

    service_account: str
    objects: Mapping[str, tuple[str, ...]]
    bucket: tuple[str, ...] = ()


POD_ACCESS: dict[str, PodAccess] = {
    WEB: PodAccess(
        WEB,
        {
            UPLOADS: ("s3:PutObject", "s3:AbortMultipartUpload", "s3:DeleteObject"),
            RESULTS: ("s3:GetObject",),
        },
        ("s3:ListBucket",),
    ),
    WORKER: PodAccess(
        WORKER,
        {UPLOADS: ("s3:GetObject",), RESULTS: ("s3:PutObject", "s3:AbortMultipartUpload")},
        ("s3:ListBucket",),
    ),
    RECONCILER: PodAccess(RECONCILER, {UPLOADS: ("s3:DeleteObject",), RESULTS: ("s3:DeleteObject",)}),
    # The migrate Job runs `manage.py migrate`; jobs/migrations/0003 stores every upload and
    # result still in PostgreSQL (AbortMultipartUpload: boto3 uploads files over 8 MiB in parts).
    MIGRATE: PodAccess(
        MIGRATE,
        {
            UPLOADS: ("s3:PutObject", "s3:AbortMultipartUpload"),
            RESULTS: ("s3:PutObject", "s3:AbortMultipartUpload"),
        },
    ),
}


APP_POD_ACCESS: dict[str, PodAccess] = {
    kind: PodAccess(
        kind,
        {"": ("s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload")},
        ("s3:ListBucket",),
    )
    for kind in (WEB, WORKER, MIGRATE)
}
"""An app's pods on the bucket, with `app.usesFilesBucket`: any key of the stack's bucket."""


def pod_access(config: StackConfig) -> dict[str, PodAccess]:
    """Each pod kind's access to the bucket: the demo's, an app's, or none."""
    if config.app is None:
        return POD_ACCESS
    return APP_POD_ACCESS if config.app.uses_files_bucket else {}


def uses_bucket(config: StackConfig) -> bool:
    """Whether the app's pods get the bucket's variables (pod_settings)."""
    return config.app is None or config.app.uses_files_bucket


def partition(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def bucket_name(stack: str, suffix: str) -> str:
    """Stack-qualified, with a random suffix: S3 names are global to the partition, so a
    guessable name could already be taken (or squatted) in another account. The stack's only
    bucket, so no more words: 63 characters leave 43 for the stack name."""
    return f"{PROJECT}-{stack}-{suffix}"


def bucket_arn(name: str, region: str) -> str:
    return f"arn:{partition(region)}:s3:::{name}"


def pod_policy(access: PodAccess, arn: str) -> dict[str, Any]:
    """The identity policy of one pod kind's role."""
    statements: list[dict[str, Any]] = [
        {
            "Sid": prefix.strip("/").capitalize() or "Objects",
            "Effect": "Allow",
            "Action": list(actions),
            "Resource": f"{arn}/{prefix}*",
        }
        for prefix, actions in access.objects.items()
    ]
    if access.bucket:
        statements.append({"Sid": "Bucket", "Effect": "Allow", "Action": list(access.bucket), "Resource": arn})
    return {"Version": "2012-10-17", "Statement": statements}


def bucket_policy(arn: str) -> dict[str, Any]:
    """Refuses every request that does not come over TLS, whoever signs it."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "TlsOnly",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [arn, f"{arn}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ],
    }


def expires(config: StackConfig) -> bool:
    """Whether the bucket expires objects after storage.retentionDays: always for the demo (its
    jobs expire), for an app only when its stack file sets the key (its files are its own)."""
    return config.app is None or "retention_days" in config.storage.model_fields_set


def lifecycle_rules(storage: StorageConfig, *, expire: bool = True) -> list[aws.s3.BucketLifecycleConfigurationRuleArgsDict]:
    if not expire:
        return [
            {
                "id": "abort-incomplete-multipart",
                "status": "Enabled",
                "filter": {"prefix": ""},
                "abort_incomplete_multipart_upload": {"days_after_initiation": ABORT_INCOMPLETE_MULTIPART_DAYS},
            }
        ]
    return [
        {
            "id": "expire-after-retention",
            "status": "Enabled",
            "filter": {"prefix": ""},
            "expiration": {"days": storage.retention_days + LIFECYCLE_MARGIN_DAYS},
            "abort_incomplete_multipart_upload": {"days_after_initiation": ABORT_INCOMPLETE_MULTIPART_DAYS},
        }
    ]


def pod_settings(config: StackConfig, *, bucket: str) -> dict[str, str]:
    """Environment of every app pod: the names django-storages reads, and the retention the
    demo's expiry applies; none for an app that does not use the bucket."""
    if not uses_bucket(config):
        return {}
    settings = {"AWS_STORAGE_BUCKET_NAME": bucket, "AWS_S3_REGION_NAME": config.region}
    if config.app is None:
        settings["JOBS_RETENTION_DAYS"] = str(config.storage.retention_days)
    return settings


def compact(document: Mapping[str, Any]) -> str:
    return json.dumps(document, separators=(",", ":"))


def _policy_json(access: PodAccess) -> Callable[[str], str]:
    return lambda arn: compact(pod_policy(access, arn))


@dataclass(frozen=True)
class StorageArgs:
    config: StackConfig
    cluster_name: pulumi.Input[str]
    """Pod Identity associations are made in this cluster."""
    namespace: str
    """The app namespace, where the pods' service accounts live."""
    vpc_id: pulumi.Input[str]
    private_route_table_ids: pulumi.Input[Sequence[str]]
    """The nodes' route tables: S3 traffic leaves through a gateway endpoint, not the NAT."""
    tags: Mapping[str, str]


class Storage(pulumi.ComponentResource):
    """The bucket, its guards, and one Pod Identity role per pod kind."""

    bucket_name: pulumi.Output[str]
    bucket_arn: pulumi.Output[str]
    pod_identity: Sequence[aws.eks.PodIdentityAssociation]
    """Pods get credentials only if created after their association: workloads wait on these."""

    def __init__(self, name: str, args: StorageArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TYPE, name, None, opts)
        config = args.config
        storage = config.storage
        keep = storage.on_destroy == "keep"
        # With "keep", every setting of the bucket stays too: deleting the public access block
        # or the TLS policy of a bucket left behind would open it.
        child = pulumi.ResourceOptions(parent=self, retain_on_delete=keep)
        tags = dict(args.tags)

        suffix = random.RandomId(f"{name}-bucket-suffix", byte_length=4, opts=pulumi.ResourceOptions(parent=self))
        stack = pulumi.get_stack()
        bucket = aws.s3.Bucket(
            f"{name}-bucket",
            bucket=suffix.hex.apply(lambda hex_: bucket_name(stack, hex_)),
            # "empty": destroy deletes the objects first (else BucketNotEmpty).
            force_destroy=not keep,
            tags=tags,
            opts=child,
        )
        arn = bucket.bucket.apply(lambda b: bucket_arn(b, config.region))

        ownership = aws.s3.BucketOwnershipControls(
            f"{name}-bucket",
            bucket=bucket.id,
            rule={"object_ownership": "BucketOwnerEnforced"},
            opts=child,
        )
        public_access = aws.s3.BucketPublicAccessBlock(
            f"{name}-bucket",
            bucket=bucket.id,
            block_public_acls=True,
            ignore_public_acls=True,
            block_public_policy=True,
            restrict_public_buckets=True,
            opts=child,
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-bucket",
            bucket=bucket.id,
            rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"}}],
            opts=child,
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-bucket",
            bucket=bucket.id,
            rules=lifecycle_rules(storage, expire=expires(config)),
            opts=child,
        )
        aws.s3.BucketPolicy(
            f"{name}-bucket",
            bucket=bucket.id,
            policy=arn.apply(lambda a: compact(bucket_policy(a))),
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[public_access, ownership])),
        )

        # A gateway endpoint routes the region's S3 traffic from the private subnets past the NAT
        # gateway: no NAT data charge per GB for uploads and results (nor for ECR image layers,
        # which are served from S3), and the traffic stays on the AWS network. No endpoint policy:
        # the pods' roles already confine them to this bucket, and a bucket list here would
        # break image pulls from ECR's own S3 buckets.
        aws.ec2.VpcEndpoint(
            f"{name}-s3-gateway",
            vpc_id=args.vpc_id,
            service_name=f"com.amazonaws.{config.region}.s3",
            vpc_endpoint_type="Gateway",
            route_table_ids=args.private_route_table_ids,
            tags={**tags, "Name": f"{name}-s3-gateway"},
            opts=pulumi.ResourceOptions(parent=self),
        )

        associations: list[aws.eks.PodIdentityAssociation] = []
        for kind, access in pod_access(config).items():
            role = aws.iam.Role(
                f"{name}-{kind}",
                assume_role_policy=json.dumps(trust_policy()),
                description=f"{kind} pods: the files bucket (EKS Pod Identity)",
                tags=tags,
                opts=pulumi.ResourceOptions(parent=self),
            )
            policy = aws.iam.RolePolicy(
                f"{name}-{kind}",
                role=role.id,
                policy=arn.apply(_policy_json(access)),
                opts=pulumi.ResourceOptions(parent=self),
            )
            associations.append(
                aws.eks.PodIdentityAssociation(
                    f"{name}-{kind}",
                    cluster_name=args.cluster_name,
                    namespace=args.namespace,
                    service_account=access.service_account,
                    role_arn=role.arn,
                    tags=tags,
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]),
                )
            )

        self.bucket_name = bucket.bucket
        self.bucket_arn = arn
        self.pod_identity = associations
        self.register_outputs({"bucket_name": self.bucket_name, "bucket_arn": self.bucket_arn})
