"""The files bucket and the pods' access to it, as the program registers them.

The IAM documents are read from the offline run (what `pulumi up` would send) and evaluated
for the requests each pod makes and must not make.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from stack.config.rules import StackConfigError, parse_stack_config
from stack.tools.offline import OfflineRun, RecordedResource
from stack.tools.plan.resources import resource_lines
from tests.infra.support.iam_evaluator import Request, UnsupportedPolicy, evaluate, wildcard_match
from tests.infra.support.stack_files import STACKS, project_config, run_edited, stack_run

BUCKET = "aws:s3/bucket:Bucket"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ASSOCIATION = "aws:eks/podIdentityAssociation:PodIdentityAssociation"


def bucket_of(run: OfflineRun) -> str:
    name: str = run.named(BUCKET, "files-bucket").inputs["bucket"]
    return name


def policy_of(run: OfflineRun, kind: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(run.named(ROLE_POLICY, f"files-{kind}").inputs["policy"])
    return document


def bucket_policy_of(run: OfflineRun) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(run.named("aws:s3/bucketPolicy:BucketPolicy", "files-bucket").inputs["policy"])
    return document


def may(run: OfflineRun, kind: str, action: str, key: str | None, *, bucket: str | None = None, tls: bool = True) -> bool:
    """Whether the `kind` pods' role may do `action` on a key (or on the bucket when key is None)."""
    name = bucket or bucket_of(run)
    resource = f"arn:aws:s3:::{name}" + (f"/{key}" if key is not None else "")
    request = Request(
        action, resource, principal=f"arn:aws:iam::123456789012:role/files-{kind}",
        context={"aws:SecureTransport": "true" if tls else "false"},
    )
    # The TLS policy is on our bucket only; another bucket's own policy is not ours to model.
    resource_policy = bucket_policy_of(run) if name == bucket_of(run) else None
    return evaluate(request, identity_policies=[policy_of(run, kind)], resource_policy=resource_policy) == "allowed"


@pytest.fixture(scope="module")
def dev() -> OfflineRun:
    return stack_run("dev")


# --- the bucket ------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_the_bucket_is_private_encrypted_and_tls_only(stack: str) -> None:
    run = stack_run(stack)
    name = bucket_of(run)
    assert name.startswith(f"django-eks-{stack}-") and len(name) <= 63
    block = run.named("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "files-bucket").inputs
    assert all(block[k] is True for k in ("blockPublicAcls", "ignorePublicAcls", "blockPublicPolicy", "restrictPublicBuckets"))
    ownership = run.named("aws:s3/bucketOwnershipControls:BucketOwnershipControls", "files-bucket").inputs
    assert ownership["rule"]["objectOwnership"] == "BucketOwnerEnforced"
    sse = run.named("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
                    "files-bucket").inputs
    assert sse["rules"][0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "AES256"
    # Versioning stays off: no versioning resource, so deleted files are gone, not kept as versions.
    assert run.of_type("aws:s3/bucketVersioning:BucketVersioning") == []
    assert run.of_type("aws:s3/bucketVersioningV2:BucketVersioningV2") == []


def test_the_bucket_policy_refuses_plain_http_even_for_an_allowed_action(dev: OfflineRun) -> None:
    assert may(dev, "web", "s3:PutObject", "uploads/job.png")
    assert not may(dev, "web", "s3:PutObject", "uploads/job.png", tls=False)
    assert not may(dev, "worker", "s3:GetObject", "uploads/job.png", tls=False)
    assert not may(dev, "web", "s3:ListBucket", None, tls=False)
    request = Request("s3:GetObject", f"arn:aws:s3:::{bucket_of(dev)}/results/x", principal="*",
                      context={"aws:SecureTransport": "false"})
    assert evaluate(request, resource_policy=bucket_policy_of(dev)) == "explicitly denied"


def test_the_lifecycle_expires_a_day_after_the_retention_and_aborts_stale_multipart_uploads() -> None:
    run = run_edited(lambda raw: raw.update({"django-eks:storage": {"retentionDays": 30}}))
    (rule,) = run.named("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "files-bucket").inputs["rules"]
    assert rule["status"] == "Enabled"
    assert rule["filter"] == {"prefix": ""}
    assert rule["expiration"]["days"] == 31
    assert rule["abortIncompleteMultipartUpload"]["daysAfterInitiation"] == 1
    config_map = next(r for r in run.of_type("kubernetes:core/v1:ConfigMap") if r.name == "app-config")
    assert config_map.inputs["data"]["JOBS_RETENTION_DAYS"] == "30"


@pytest.mark.parametrize(
    ("key", "value"),
    [("retentionDays", 0), ("retentionDays", 366), ("retentionDays", "a week"), ("onDestroy", "delete"),
     # The service refuses uploads over 10 MiB: an average above that is a typo.
     ("averageUploadMib", 11), ("averageResultMib", 0), ("jobsPerDay", -1)],
)
def test_bad_storage_settings_are_refused_naming_the_key(key: str, value: Any) -> None:
    raw = {**project_config("dev"), "storage": {key: value}}
    with pytest.raises(StackConfigError) as caught:
        parse_stack_config(raw)
    assert f"storage.{key}" in str(caught.value)


def _children(run: OfflineRun) -> list[RecordedResource]:
    return [r for r in run.resources if r.type.startswith("aws:s3/")]


def test_destroy_empties_the_bucket_by_default(dev: OfflineRun) -> None:
    assert dev.named(BUCKET, "files-bucket").inputs["forceDestroy"] is True
    assert not any(r.retain_on_delete for r in _children(dev))


def test_keep_leaves_the_bucket_and_every_setting_that_guards_it() -> None:
    run = run_edited(lambda raw: raw.update({"django-eks:storage": {"onDestroy": "keep"}}))
    assert run.named(BUCKET, "files-bucket").inputs["forceDestroy"] is False
    kept = {r.type.split(":")[-1] for r in _children(run) if r.retain_on_delete}
    assert kept == {"Bucket", "BucketOwnershipControls", "BucketPublicAccessBlock",
                    "BucketServerSideEncryptionConfiguration", "BucketLifecycleConfiguration", "BucketPolicy"}


# --- the pods' access -----------------------------------------------------------------------


def test_web_puts_uploads_and_reads_results_and_nothing_else(dev: OfflineRun) -> None:
    assert may(dev, "web", "s3:PutObject", "uploads/0b9e.png")
    assert may(dev, "web", "s3:GetObject", "results/0b9e.webp")  # what its presigned URLs do
    assert may(dev, "web", "s3:DeleteObject", "uploads/0b9e.png")  # an upload whose job it refused
    assert may(dev, "web", "s3:ListBucket", None)  # HeadBucket at start-up
    assert not may(dev, "web", "s3:PutObject", "results/0b9e.webp")
    assert not may(dev, "web", "s3:GetObject", "uploads/0b9e.png")
    assert not may(dev, "web", "s3:DeleteObject", "results/0b9e.webp")
    assert not may(dev, "web", "s3:PutObject", "0b9e.png")
    assert not may(dev, "web", "s3:DeleteBucket", None)
    assert not may(dev, "web", "s3:PutBucketPolicy", None)
    assert not may(dev, "web", "s3:PutObjectAcl", "uploads/0b9e.png")


def test_worker_reads_uploads_and_writes_results_and_nothing_else(dev: OfflineRun) -> None:
    assert may(dev, "worker", "s3:GetObject", "uploads/0b9e.png")
    assert may(dev, "worker", "s3:PutObject", "results/0b9e.webp")
    assert may(dev, "worker", "s3:AbortMultipartUpload", "results/0b9e.webp")
    assert not may(dev, "worker", "s3:PutObject", "uploads/0b9e.png")
    assert not may(dev, "worker", "s3:GetObject", "results/0b9e.webp")
    assert not may(dev, "worker", "s3:DeleteObject", "uploads/0b9e.png")
    assert not may(dev, "worker", "s3:DeleteObject", "results/0b9e.webp")
    assert not may(dev, "worker", "s3:DeleteBucket", None)


def test_the_reconciler_only_deletes_expired_files(dev: OfflineRun) -> None:
    assert may(dev, "reconciler", "s3:DeleteObject", "uploads/0b9e.png")
    assert may(dev, "reconciler", "s3:DeleteObject", "results/0b9e.webp")
    for action in ("s3:GetObject", "s3:PutObject"):
        assert not may(dev, "reconciler", action, "uploads/0b9e.png")
        assert not may(dev, "reconciler", action, "results/0b9e.webp")
    assert not may(dev, "reconciler", "s3:ListBucket", None)
    assert not may(dev, "reconciler", "s3:DeleteBucket", None)


def test_the_migration_only_puts_the_files_it_moves_out_of_the_database(dev: OfflineRun) -> None:
    for key in ("uploads/0b9e", "results/0b9e.webp"):
        assert may(dev, "migrate", "s3:PutObject", key)
        assert may(dev, "migrate", "s3:AbortMultipartUpload", key)
        for action in ("s3:GetObject", "s3:DeleteObject"):
            assert not may(dev, "migrate", action, key)
    assert not may(dev, "migrate", "s3:PutObject", "0b9e")
    assert not may(dev, "migrate", "s3:ListBucket", None)


@pytest.mark.parametrize("kind", ["web", "worker", "reconciler", "migrate"])
def test_no_pod_touches_another_bucket(dev: OfflineRun, kind: str) -> None:
    own = bucket_of(dev)
    for other in ("someone-elses-bucket", f"{own}-evil", own[:-1]):
        for action, key in (("s3:PutObject", "uploads/x"), ("s3:GetObject", "results/x"),
                            ("s3:GetObject", "uploads/x"), ("s3:DeleteObject", "uploads/x"), ("s3:ListBucket", None)):
            assert not may(dev, kind, action, key, bucket=other), (kind, action, other)


def test_each_pod_kind_is_associated_with_its_own_role_through_pod_identity(dev: OfflineRun) -> None:
    associations = {a.inputs["serviceAccount"]: a for a in dev.of_type(ASSOCIATION) if a.name.startswith("files-")}
    assert set(associations) == {"web", "worker", "reconciler", "migrate"}
    for account, association in associations.items():
        assert association.inputs["namespace"] == "app"
        assert association.inputs["roleArn"].endswith(f"role/files-{account}-placeholder")
        role = dev.named(ROLE, f"files-{account}")
        trust = json.loads(role.inputs["assumeRolePolicy"])
        assert trust["Statement"] == [{"Effect": "Allow", "Principal": {"Service": "pods.eks.amazonaws.com"},
                                       "Action": ["sts:AssumeRole", "sts:TagSession"]}]


def test_web_and_worker_pods_use_their_accounts_and_start_after_their_associations(dev: OfflineRun) -> None:
    associations = {a.urn for a in dev.of_type(ASSOCIATION) if a.name in ("files-web", "files-worker")}
    for kind in ("web", "worker"):
        deployment = dev.named("kubernetes:apps/v1:Deployment", f"app-{kind}")
        assert deployment.inputs["spec"]["template"]["spec"]["serviceAccountName"] == kind
        assert associations <= set(deployment.dependencies), kind


def test_the_reconciler_and_the_migration_use_their_accounts_the_bucket_and_start_after_their_associations(
    dev: OfflineRun,
) -> None:
    config_map = next(r for r in dev.of_type("kubernetes:core/v1:ConfigMap") if r.name == "app-config")
    assert config_map.inputs["data"]["AWS_STORAGE_BUCKET_NAME"] == bucket_of(dev)
    cron_job = dev.named("kubernetes:batch/v1:CronJob", "app-reconciler")
    migration = dev.named("kubernetes:batch/v1:Job", "app-migrate")
    pods = {
        "reconciler": (cron_job, cron_job.inputs["spec"]["jobTemplate"]["spec"]["template"]["spec"]),
        "migrate": (migration, migration.inputs["spec"]["template"]["spec"]),
    }
    for kind, (job, pod) in pods.items():
        assert pod["serviceAccountName"] == kind
        assert {"configMapRef": {"name": config_map.outputs["metadata"]["name"]}} in pod["containers"][0]["envFrom"]
        association = next(a for a in dev.of_type(ASSOCIATION) if a.name == f"files-{kind}")
        assert association.urn in job.dependencies, kind


def test_pods_get_the_bucket_and_region_in_their_environment(dev: OfflineRun) -> None:
    config_map = next(r for r in dev.of_type("kubernetes:core/v1:ConfigMap") if r.name == "app-config")
    data = config_map.inputs["data"]
    assert data["AWS_STORAGE_BUCKET_NAME"] == bucket_of(dev)
    assert data["AWS_S3_REGION_NAME"] == dev.region
    assert data["JOBS_RETENTION_DAYS"] == "7"
    deployment = dev.named("kubernetes:apps/v1:Deployment", "app-web")
    env_from = deployment.inputs["spec"]["template"]["spec"]["containers"][0]["envFrom"]
    assert {"configMapRef": {"name": config_map.outputs["metadata"]["name"]}} in env_from


@pytest.mark.parametrize("stack", STACKS)
def test_nodes_still_give_pods_nothing(stack: str) -> None:
    for template in stack_run(stack).of_type("aws:ec2/launchTemplate:LaunchTemplate"):
        metadata = template.inputs["metadataOptions"]
        assert metadata["httpTokens"] == "required"
        assert metadata["httpPutResponseHopLimit"] == 1


# --- the evaluator itself --------------------------------------------------------------------


def test_the_evaluator_follows_iam_precedence_and_wildcards() -> None:
    allow_all = {"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
    deny_delete = {"Statement": [{"Effect": "Deny", "Action": "s3:Delete*", "Resource": "arn:aws:s3:::b/*"}]}
    get = Request("s3:GetObject", "arn:aws:s3:::b/k")
    delete = Request("s3:DeleteObject", "arn:aws:s3:::b/k")
    assert evaluate(get, identity_policies=[allow_all, deny_delete]) == "allowed"
    assert evaluate(delete, identity_policies=[allow_all, deny_delete]) == "explicitly denied"
    assert evaluate(get) == "implicitly denied"
    # Actions are case-insensitive, ARNs are not; ? is one character.
    assert evaluate(Request("S3:getobject", "arn:aws:s3:::b/k"), identity_policies=[allow_all]) == "allowed"
    assert not wildcard_match("arn:aws:s3:::b/uploads/*", "arn:aws:s3:::b/Uploads/x", case_sensitive=True)
    assert wildcard_match("arn:aws:s3:::b/?", "arn:aws:s3:::b/k", case_sensitive=True)
    assert not wildcard_match("arn:aws:s3:::b/?", "arn:aws:s3:::b/kk", case_sensitive=True)
    # NotAction: everything but the listed actions.
    not_get = {"Statement": [{"Effect": "Allow", "NotAction": "s3:GetObject", "Resource": "*"}]}
    assert evaluate(get, identity_policies=[not_get]) == "implicitly denied"
    assert evaluate(delete, identity_policies=[not_get]) == "allowed"
    # A resource policy allows on its own for a principal it names (same account).
    named = {"Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::1:role/r"}, "Action": "s3:GetObject",
                            "Resource": "arn:aws:s3:::b/*"}]}
    assert evaluate(Request("s3:GetObject", "arn:aws:s3:::b/k", principal="arn:aws:iam::1:role/r"),
                    resource_policy=named) == "allowed"
    assert evaluate(Request("s3:GetObject", "arn:aws:s3:::b/k", principal="arn:aws:iam::1:role/other"),
                    resource_policy=named) == "implicitly denied"


def test_the_evaluator_treats_a_missing_condition_key_as_no_match_and_refuses_unknown_operators() -> None:
    tls_only = {"Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*",
                               "Condition": {"Bool": {"aws:SecureTransport": "true"}}}]}
    assert evaluate(Request("s3:GetObject", "arn:aws:s3:::b/k", context={}), identity_policies=[tls_only]) \
        == "implicitly denied"
    ip = {"Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*",
                         "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}]}
    with pytest.raises(UnsupportedPolicy, match="IpAddress"):
        evaluate(Request("s3:GetObject", "arn:aws:s3:::b/k"), identity_policies=[ip])


def test_the_plan_lists_the_associations_and_the_rendered_policies(dev: OfflineRun) -> None:
    lines = {(line.type, line.name): line for line in resource_lines(dev.resources)}
    bucket = bucket_of(dev)
    for kind in ("web", "worker", "reconciler"):
        association = lines[(ASSOCIATION, f"files-{kind}")]
        assert association.component == "django-eks:platform:Storage files"
        assert association.settings == {"namespace": "app", "serviceAccount": kind}
    assert lines[(ROLE_POLICY, "files-worker")].settings["policy"] == (
        f"Allow s3:GetObject on arn:aws:s3:::{bucket}/uploads/*; "
        f"Allow s3:PutObject,s3:AbortMultipartUpload on arn:aws:s3:::{bucket}/results/*; "
        f"Allow s3:ListBucket on arn:aws:s3:::{bucket}"
    )
    assert lines[("aws:s3/bucketPolicy:BucketPolicy", "files-bucket")].settings["policy"].startswith("Deny s3:* on ")
    assert lines[("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "files-bucket")].settings == {
        "expireDays": 8, "abortMultipartDays": 1}


@pytest.mark.parametrize("stack", STACKS)
def test_s3_traffic_from_the_private_subnets_bypasses_the_nat_gateway(stack: str) -> None:
    run = stack_run(stack)
    endpoint = run.named("aws:ec2/vpcEndpoint:VpcEndpoint", "files-s3-gateway").inputs
    assert endpoint["vpcEndpointType"] == "Gateway"
    assert endpoint["serviceName"] == f"com.amazonaws.{run.region}.s3"
    private_tables = {f"{t.name}-placeholder-id" for t in run.of_type("aws:ec2/routeTable:RouteTable")
                      if t.name.startswith("net-private-")}
    assert len(private_tables) == run.config.network.az_count
    assert set(endpoint["routeTableIds"]) == private_tables


# --- an app of its own (`app` section) ---------------------------------------------------------


def with_bucket(raw: dict[str, Any]) -> None:
    raw["django-eks:app"]["usesFilesBucket"] = True


def test_an_app_without_the_files_bucket_gets_no_role_and_no_bucket_variable() -> None:
    run = stack_run("exp-example")
    assert run.config.app is not None and not run.config.app.uses_files_bucket
    assert [r for r in run.of_type(ASSOCIATION) if r.inputs["namespace"] == "app"] == []
    assert [r for r in run.of_type(ROLE_POLICY) if r.name.startswith("files-")] == []
    data = run.named("kubernetes:core/v1:ConfigMap", "app-config").inputs["data"]
    assert not [k for k in data if k.startswith(("AWS_", "JOBS_"))], sorted(data)


def test_an_app_with_the_files_bucket_may_use_any_key_of_it_and_nothing_else() -> None:
    run = run_edited(with_bucket, base="exp-example")
    app_accounts = [r.inputs["serviceAccount"] for r in run.of_type(ASSOCIATION) if r.inputs["namespace"] == "app"]
    assert sorted(app_accounts) == ["migrate", "web", "worker"]
    for kind in ("web", "worker", "migrate"):
        for action in ("s3:GetObject", "s3:PutObject", "s3:DeleteObject"):
            assert may(run, kind, action, "notes/attachments/a.pdf")
        assert may(run, kind, "s3:ListBucket", None)
        assert not may(run, kind, "s3:DeleteBucket", None)
        assert not may(run, kind, "s3:PutBucketPolicy", None)
        assert not may(run, kind, "s3:GetObject", "a.pdf", bucket="another-bucket")
    data = run.named("kubernetes:core/v1:ConfigMap", "app-config").inputs["data"]
    assert data["AWS_STORAGE_BUCKET_NAME"] == bucket_of(run) and "JOBS_RETENTION_DAYS" not in data
    # An app's files are its own: no expiry unless the stack file asks for one.
    (rule,) = run.named("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "files-bucket").inputs["rules"]
    assert "expiration" not in rule and rule["abortIncompleteMultipartUpload"]["daysAfterInitiation"] == 1
