"""RDS for PostgreSQL, reachable only from the cluster."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from stack.config.model import PROJECT, DatabaseConfig
from stack.platform.datastore_network import DatastoreNetworkArgs, datastore_network

POSTGRES_PORT = 5432
DATABASE_NAME = "app"
DATABASE_USER = "app"


ENGINE = "postgres"


def parameter_group_family(engine_version: str) -> str:
    """The DB parameter group family of a PostgreSQL major version: 17 -> postgres17."""
    return f"{ENGINE}{engine_version.split('.')[0]}"


def parameter_group_name(engine_version: str) -> str:
    """RDS's default parameter group of the version's family (default.postgres17).

    Named explicitly so that a major upgrade sends the new family's group with the new version
    in one ModifyDBInstance call: RDS refuses a group of the old family on the new major. The
    default group belongs to RDS, so no group of ours is left in use or has to be deleted.
    """
    return f"default.{parameter_group_family(engine_version)}"


def snapshot_suffix_keepers() -> dict[str, str]:
    """The instance inputs that replace it when they change (ForceNew in the AWS provider's
    aws_db_instance) and that this program sets, keyed by their Pulumi input names.

    They key the final snapshot's random suffix: an update that replaces the instance
    replaces the suffix too, so the new instance never reuses the old one's snapshot name.
    """
    return {"engine": ENGINE, "dbName": DATABASE_NAME, "username": DATABASE_USER, "storageEncrypted": "true"}


def final_snapshot_identifier(stack: str, name: str, suffix: str) -> str:
    """`<project>-<stack>-<name>-final-<suffix>`: unique per stack, and per deletion by the suffix.

    RDS keeps the final snapshot after the instance is gone, and refuses a second snapshot of
    the same name (DBSnapshotAlreadyExists). A suffix generated with the instance is deleted
    with it, so each instance, and so each deletion, has its own name.
    """
    return f"{PROJECT}-{stack}-{name}-final-{suffix}"


def database_url(host: str, password: str, port: int = POSTGRES_PORT) -> str:
    return (
        f"postgres://{DATABASE_USER}:{quote(password, safe='')}@{host}:{port}/{DATABASE_NAME}"
        "?sslmode=require"
    )


@dataclass(frozen=True)
class DatabaseArgs:
    config: DatabaseConfig
    network: DatastoreNetworkArgs
    tags: dict[str, str]


class Database(pulumi.ComponentResource):
    address: pulumi.Output[str]
    identifier: pulumi.Output[str]
    """The DBInstanceIdentifier dimension of the instance's CloudWatch metrics."""
    url: pulumi.Output[str]
    """Secret: postgres:// URL with the generated password."""

    def __init__(
        self, name: str, args: DatabaseArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("django-eks:platform:Database", name, None, opts)
        config = args.config
        child = pulumi.ResourceOptions(parent=self)

        # RDS passwords may not contain / " @ or spaces; letters and digits avoid all of them.
        password = random.RandomPassword(f"{name}-password", length=40, special=False, opts=child)
        network = datastore_network(
            name,
            args.network,
            subnet_group=aws.rds.SubnetGroup,
            serves="PostgreSQL",
            engine="PostgreSQL",
            port=POSTGRES_PORT,
            tags=args.tags,
            parent=self,
        )
        snapshot_suffix = random.RandomId(
            f"{name}-final-snapshot", byte_length=4, keepers=snapshot_suffix_keepers(), opts=child
        )
        instance = aws.rds.Instance(
            f"{name}",
            engine=ENGINE,
            engine_version=config.engine_version,
            instance_class=config.instance_class,
            allocated_storage=config.storage_gib,
            storage_type="gp3",
            storage_encrypted=True,
            db_name=DATABASE_NAME,
            username=DATABASE_USER,
            password=password.result,
            port=POSTGRES_PORT,
            db_subnet_group_name=network.subnet_group_name,
            vpc_security_group_ids=[network.security_group_id],
            publicly_accessible=False,
            multi_az=config.multi_az,
            deletion_protection=config.deletion_protection,
            backup_retention_period=config.backup_retention_days,
            # A protected database keeps a final snapshot if it is ever deleted.
            skip_final_snapshot=not config.deletion_protection,
            final_snapshot_identifier=snapshot_suffix.hex.apply(
                lambda suffix: final_snapshot_identifier(pulumi.get_stack(), name, suffix)
            )
            if config.deletion_protection
            else None,
            parameter_group_name=parameter_group_name(config.engine_version),
            # RDS refuses a new major version (database.engineVersion 16 -> 17) unless the
            # modification allows it; it never downgrades, so lowering the version fails there.
            allow_major_version_upgrade=True,
            auto_minor_version_upgrade=True,
            copy_tags_to_snapshot=True,
            # A protected (production) database takes its upgrades and other disruptive changes
            # in the maintenance window; the others at once.
            apply_immediately=not config.deletion_protection,
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, additional_secret_outputs=["password"]),
        )
        self.address = instance.address
        self.identifier = instance.identifier
        self.url = pulumi.Output.secret(
            pulumi.Output.all(instance.address, password.result).apply(
                lambda v: database_url(v[0], v[1])
            )
        )
        self.register_outputs({"address": self.address, "url": self.url})
