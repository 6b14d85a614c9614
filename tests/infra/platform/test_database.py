"""The PostgreSQL database (stack/platform/database.py): private, encrypted, sized from config,
reachable from the cluster only, and protected in prod."""

from __future__ import annotations

import pytest

from stack.tools.offline import is_secret
from tests.infra.support.network import ingress_of, subnet_ids
from tests.infra.support.stack_files import STACKS, stack_run

RDS = "aws:rds/instance:Instance"


@pytest.mark.parametrize("stack", STACKS)
def test_postgres_is_private_encrypted_and_sized_from_config(stack: str) -> None:
    run = stack_run(stack)
    db = run.named(RDS, "postgres").inputs
    config = run.config.database
    assert db["instanceClass"] == config.instance_class
    assert db["multiAz"] is config.multi_az
    assert db["allocatedStorage"] == config.storage_gib
    assert db["deletionProtection"] is config.deletion_protection
    assert db["backupRetentionPeriod"] == config.backup_retention_days
    assert db["storageEncrypted"] is True
    assert db["publiclyAccessible"] is False
    assert is_secret(db["password"])
    subnets = run.named("aws:rds/subnetGroup:SubnetGroup", "postgres-subnets").inputs
    assert set(subnets["subnetIds"]) == subnet_ids(run, "private")


def test_prod_database_is_multi_az_and_protected() -> None:
    db = stack_run("prod").named(RDS, "postgres").inputs
    assert db["multiAz"] is True and db["deletionProtection"] is True
    assert db["skipFinalSnapshot"] is False


def test_postgres_admits_only_the_cluster_on_its_port() -> None:
    assert ingress_of(stack_run("prod"), "postgres-sg") == [(5432, 5432, "sg-placeholder-cluster")]
