"""Engine upgrades of the datastores update them in place: PostgreSQL 16 -> 17 on RDS, and an
ElastiCache group from Redis OSS to Valkey. Each test runs the program offline twice, before and
after the config change, and applies the AWS provider's rules for what an input change does.

Which input changes replace a resource is the AWS provider's decision (pulumi_aws 7.51.1 bridges
hashicorp/terraform-provider-aws; the engine replaces when the provider's diff says so, and
otherwise updates: pulumi/pulumi pkg/resource/deploy/step_generator.go:1952-1953). The rules
reproduced here, from the provider's schema:

* aws_db_instance (internal/service/rds/instance.go, schema): `engine`, `db_name`, `username`,
  `storage_encrypted`, `identifier`, `kms_key_id`, `availability_zone` ... are ForceNew;
  `engine_version`, `parameter_group_name` and `allow_major_version_upgrade` are not. Its update
  (resourceInstanceUpdate) sends EngineVersion with AllowMajorVersionUpgrade and, when it changed,
  DBParameterGroupName in one ModifyDBInstance call.
* aws_elasticache_replication_group (internal/service/elasticache/replication_group.go, schema
  and CustomizeDiff): `port`, `subnet_group_name`, `at_rest_encryption_enabled`, `kms_key_id`,
  `replication_group_id` ... are ForceNew; `engine` is replaced unless it goes from redis to
  valkey (`customizeDiffEngineForceNewOnDowngrade`), `engine_version` only when it goes down
  (`engineVersionIsDowngrade`, engine_version.go, numeric comparison across engines);
  `parameter_group_name` is updated. The update sends Engine, EngineVersion and
  CacheParameterGroupName in one ModifyReplicationGroup call, and refuses an engine change to
  valkey without an engine_version change.
* aws_elasticache_parameter_group: `family`, `name` and `description` are ForceNew. An
  auto-named group is replaced create-before-delete, and the engine deletes the replaced group
  only "after all creates/updates finish" (step_generator.go:2164), i.e. after the replication
  group has moved to the new one: AWS refuses to delete a parameter group in use.

AWS's side: RDS ModifyDBInstance "AllowMajorVersionUpgrade ... must be allowed when specifying a
value for the EngineVersion parameter that's a different major version than the DB instance's
current version", and for a major upgrade "the new DB parameter group can be the default for that
DB parameter group family" (https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_ModifyDBInstance.html);
without the flag RDS answers "InvalidParameterCombination: The AllowMajorVersionUpgrade flag must
be present when upgrading to a new major version". ElastiCache: a Redis OSS replication group is
upgraded to Valkey by ModifyReplicationGroup with the new engine and engine version (and a Valkey
parameter group when it has a custom one); the endpoint stays
(https://docs.aws.amazon.com/AmazonElastiCache/latest/dg/VersionManagement.HowTo.html).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from stack.tools.offline import OfflineRun, RecordedResource
from tests.infra.support.stack_files import run_edited

RDS = "aws:rds/instance:Instance"
RANDOM_ID = "random:index/randomId:RandomId"
GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"
CACHE_PARAMS = "aws:elasticache/parameterGroup:ParameterGroup"

RDS_FORCE_NEW = {
    "availabilityZone", "characterSetName", "customIamInstanceProfile", "dbName", "engine",
    "identifier", "identifierPrefix", "kmsKeyId", "ncharCharacterSetName", "restoreToPointInTime",
    "snapshotIdentifier", "storageEncrypted", "timezone", "username",
}
GROUP_FORCE_NEW = {
    "atRestEncryptionEnabled", "dataTieringEnabled", "globalReplicationGroupId", "kmsKeyId",
    "networkType", "port", "replicationGroupId", "securityGroupNames", "snapshotArns",
    "snapshotName", "subnetGroupName",
}
CACHE_PARAMS_FORCE_NEW = {"family", "name", "description"}


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def changed_inputs(before: RecordedResource, after: RecordedResource) -> set[str]:
    keys = set(before.inputs) | set(after.inputs)
    return {k for k in keys if before.inputs.get(k) != after.inputs.get(k)}


def rds_replaced(before: RecordedResource, after: RecordedResource) -> bool:
    return bool(changed_inputs(before, after) & RDS_FORCE_NEW)


def group_replaced(before: RecordedResource, after: RecordedResource) -> bool:
    changed = changed_inputs(before, after)
    if changed & GROUP_FORCE_NEW:
        return True
    old, new = before.inputs.get("engine"), after.inputs.get("engine")
    if "engine" in changed and not (old == "redis" and new == "valkey"):
        return True
    if "engineVersion" in changed:
        return _version(after.inputs["engineVersion"]) < _version(before.inputs["engineVersion"])
    return False


def edit(section: str, **values: Any) -> Callable[[dict[str, Any]], None]:
    def apply(raw: dict[str, Any]) -> None:
        key = f"django-eks:{section}"
        raw[key] = {**raw.get(key, {}), **values}

    return apply


def postgres(version: str) -> OfflineRun:
    # prod: deletion protection, so the final-snapshot suffix and its keepers are in play.
    return run_edited(edit("database", engineVersion=version), base="prod")


def test_postgres_16_to_17_updates_the_instance_with_the_major_upgrade_allowed() -> None:
    old_run, new_run = postgres("16"), postgres("17")
    before, after = old_run.named(RDS, "postgres"), new_run.named(RDS, "postgres")
    # RDS refuses the new major without the flag, and a parameter group of the old family.
    assert after.inputs.get("allowMajorVersionUpgrade") is True
    assert changed_inputs(before, after) == {"engineVersion", "parameterGroupName"}
    assert not rds_replaced(before, after)
    assert before.inputs["parameterGroupName"] == "default.postgres16"
    assert after.inputs["parameterGroupName"] == "default.postgres17"
    # The final snapshot's suffix is keyed by the replacing inputs only: the upgrade keeps it,
    # and with it the instance's finalSnapshotIdentifier.
    old_suffix = old_run.named(RANDOM_ID, "postgres-final-snapshot")
    new_suffix = new_run.named(RANDOM_ID, "postgres-final-snapshot")
    assert old_suffix.inputs == new_suffix.inputs
    assert before.inputs["finalSnapshotIdentifier"] == after.inputs["finalSnapshotIdentifier"]


def test_a_protected_database_upgrades_in_its_maintenance_window_others_at_once() -> None:
    assert postgres("17").named(RDS, "postgres").inputs["applyImmediately"] is False
    dev = run_edited(edit("database", engineVersion="17"), base="dev").named(RDS, "postgres")
    assert dev.inputs["applyImmediately"] is True


def cache(engine: str, version: str | None = None) -> OfflineRun:
    values: dict[str, Any] = {"engine": engine}
    if version:
        values["engineVersion"] = version
    return run_edited(edit("redis", **values), base="prod")


def test_a_redis_oss_group_moves_to_valkey_in_place_with_a_valkey_parameter_group() -> None:
    old_run, new_run = cache("redis", "7.1"), cache("valkey")
    before, after = old_run.named(GROUP, "redis"), new_run.named(GROUP, "redis")
    assert (before.inputs["engine"], after.inputs["engine"]) == ("redis", "valkey")
    # The provider refuses an engine change to valkey without a new engine_version.
    assert before.inputs["engineVersion"] == "7.1"
    assert after.inputs["engineVersion"] == new_run.config.redis.version == "8.2"
    assert not group_replaced(before, after)
    # The parameter group follows the engine's family: replaced, create-before-delete (auto-named,
    # no deleteBeforeReplace), and the group points at the replacement.
    old_params, new_params = old_run.named(CACHE_PARAMS, "redis-params"), new_run.named(CACHE_PARAMS, "redis-params")
    assert (old_params.inputs["family"], new_params.inputs["family"]) == ("redis7", "valkey8")
    assert changed_inputs(old_params, new_params) & CACHE_PARAMS_FORCE_NEW == {"family"}
    assert "name" not in new_params.inputs and not new_params.delete_before_replace
    assert new_params.urn in after.dependencies
    assert {"name": "maxmemory-policy", "value": "noeviction"} in new_params.inputs["parameters"]
    # Same endpoint, AUTH token and port: the service's URL and KEDA's scaler address do not move.
    assert old_run.outputs.keys() == new_run.outputs.keys()
    assert before.inputs["port"] == after.inputs["port"] == 6379
    assert before.inputs["authToken"] == after.inputs["authToken"]


def test_valkey_back_to_redis_would_replace_the_group() -> None:
    before, after = cache("valkey", "8.2").named(GROUP, "redis"), cache("redis", "7.1").named(GROUP, "redis")
    assert group_replaced(before, after)


@pytest.mark.parametrize(("engine", "version"), [("valkey", "7.1"), ("redis", "8.0")])
def test_a_version_the_engine_does_not_have_is_refused_naming_the_key(engine: str, version: str) -> None:
    with pytest.raises(Exception, match=r"redis\.engineVersion"):
        cache(engine, version)
