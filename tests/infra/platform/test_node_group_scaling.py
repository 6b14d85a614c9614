"""Node group bounds after creation: the live desired size is kept unless the new bounds
exclude it, so raising minSize above it never fails an update."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from pulumi import dynamic
from pulumi.dynamic.dynamic import _serialize, serialize_provider

from stack.platform import node_group_scaling as ngs
from tests.infra.support.stack_files import STACKS, stack_run


@pytest.mark.parametrize(
    ("live", "low", "high", "desired"),
    [
        (4, 2, 6, 4),  # the autoscaler's choice stands
        (2, 3, 6, 3),  # minSize raised above the live size: desired follows it
        (5, 1, 3, 3),  # maxSize lowered below it: desired follows it down
        (0, 0, 3, 0),  # a pool scaled to zero stays there
    ],
)
def test_desired_size_is_the_live_size_within_the_new_bounds(live: int, low: int, high: int, desired: int) -> None:
    config = ngs.scaling_config(live_desired=live, min_size=low, max_size=high)
    assert config == {"minSize": low, "maxSize": high, "desiredSize": desired}
    # What EKS checks before accepting the update.
    assert config["minSize"] <= config["desiredSize"] <= config["maxSize"]


def test_inverted_bounds_are_refused_with_both_values() -> None:
    with pytest.raises(ValueError, match="minSize 4 and maxSize 2"):
        ngs.scaling_config(live_desired=3, min_size=4, max_size=2)


def test_only_a_change_of_bounds_or_group_is_an_update() -> None:
    old = {"region": "us-east-1", "cluster_name": "c", "node_group_name": "g", "min_size": 1, "max_size": 3}
    provider = ngs._NodeGroupScalingProvider()
    assert not provider.diff("c/g", old, dict(old)).changes
    assert provider.diff("c/g", old, {**old, "min_size": 2}).changes
    assert provider.diff("c/g", old, {**old, "node_group_name": "g2"}).changes
    assert ngs.bounds_changed(old, {**old, "max_size": 6}) == ["max_size"]


@pytest.mark.parametrize("stack", STACKS)
def test_every_node_group_has_its_bounds_from_config(stack: str) -> None:
    run = stack_run(stack)
    bounds = {r.name: r.inputs for r in run.of_type("pulumi-python:dynamic:Resource")}
    for pool_name, pool in run.config.node_pools.items():
        inputs = bounds[f"autoscaling-bounds-{pool_name}"]
        assert (inputs["min_size"], inputs["max_size"]) == (pool.min_size, pool.max_size)
        assert inputs["node_group_name"] == run.outputs["nodePoolNames"][pool_name]
        assert inputs["cluster_name"] == run.outputs["clusterName"]
        assert inputs["region"] == run.config.region


def test_a_provider_stored_by_other_code_is_brought_up_to_date() -> None:
    """Delete and refresh use the provider stored in the state; an update rewrites it."""
    old = {"region": "us-east-1", "cluster_name": "c", "node_group_name": "g", "min_size": 1, "max_size": 3}
    provider = ngs._NodeGroupScalingProvider()
    assert provider.diff("c/g", {**old, "__provider": "by reference"}, {**old, "__provider": "by value"}).changes
    assert not provider.diff("c/g", {**old, "__provider": "by value"}, {**old, "__provider": "by value"}).changes


STACK_ACCOUNT = "111111111111"
STACK_REGION = "eu-central-1"
STACK_ROLE = f"arn:aws:iam::{STACK_ACCOUNT}:role/deployer"
STACK_CONFIG = {
    "aws:region": STACK_REGION,
    "aws:assumeRoles": json.dumps([{"roleArn": STACK_ROLE, "sessionName": "deploy"}]),
    "django-eks:nodePools": "{}",
}
"""What the engine passes the dynamic provider's Configure: the whole stack config, keys with
their namespace, values as text (pulumi/pulumi pkg/resource/deploy/target.go GetPackageConfig:
"For dynamic providers, we always pass the full configuration")."""


@pytest.fixture
def shell(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """A shell with its own AWS account and region, and moto's AWS behind boto3."""
    for key in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    with mock_aws():
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIASHELL00000000000")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "shell-secret")
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-west-2")
        yield


def stack_eks() -> Any:
    """EKS in the stack's account (moto puts what assumed-role credentials create in the role's
    account) and region."""
    credentials = boto3.client("sts").assume_role(RoleArn=STACK_ROLE, RoleSessionName="setup")["Credentials"]
    return boto3.client(
        "eks", region_name=STACK_REGION, aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"], aws_session_token=credentials["SessionToken"],
    )


def node_group(eks: Any, *, min_size: int, desired: int, max_size: int) -> dict[str, Any]:
    eks.create_cluster(name="main", roleArn=f"arn:aws:iam::{STACK_ACCOUNT}:role/eks",
                       resourcesVpcConfig={"subnetIds": ["subnet-1"]})
    eks.create_nodegroup(clusterName="main", nodegroupName="web-1", subnets=["subnet-1"],
                         nodeRole=f"arn:aws:iam::{STACK_ACCOUNT}:role/node",
                         scalingConfig={"minSize": min_size, "desiredSize": desired, "maxSize": max_size})
    return {"region": STACK_REGION, "cluster_name": "main", "node_group_name": "web-1",
            "min_size": min_size, "max_size": max_size}


def configured(config: dict[str, Any]) -> Any:
    """The provider as the plugin host sets it up (pulumi/dynamic/__main__.py get_provider)."""
    provider = ngs._NodeGroupScalingProvider()
    provider.configure(dynamic.ConfigureRequest(dynamic.Config(config, "django-eks")))
    return provider


def live_scaling(eks: Any) -> dict[str, int]:
    config: dict[str, int] = eks.describe_nodegroup(clusterName="main", nodegroupName="web-1")["nodegroup"]["scalingConfig"]
    return config


def test_updates_reach_the_stacks_account_and_region_not_the_shells(shell: None) -> None:
    eks = stack_eks()
    props = node_group(eks, min_size=1, desired=2, max_size=3)
    configured(STACK_CONFIG).update("main/web-1", props, {**props, "min_size": 3, "max_size": 6})
    assert live_scaling(eks) == {"minSize": 3, "desiredSize": 3, "maxSize": 6}


def test_refresh_sees_bounds_changed_outside_pulumi_and_a_deleted_group(shell: None) -> None:
    """`pulumi refresh` calls Read (pulumi/dynamic/__main__.py Read): its outputs become the
    state, and an empty id tells the engine the resource is gone."""
    eks = stack_eks()
    props = node_group(eks, min_size=1, desired=2, max_size=3)
    provider = configured(STACK_CONFIG)
    eks.update_nodegroup_config(clusterName="main", nodegroupName="web-1",
                                scalingConfig={"minSize": 2, "desiredSize": 2, "maxSize": 5})
    read = provider.read("main/web-1", props)
    assert read.id == "main/web-1"
    assert (read.outs["min_size"], read.outs["max_size"]) == (2, 5)
    # The next `pulumi up` diffs the refreshed state against the program: the bounds go back.
    assert provider.diff("main/web-1", read.outs, props).changes
    eks.delete_nodegroup(clusterName="main", nodegroupName="web-1")
    assert not provider.read("main/web-1", props).id


def test_the_stacks_keys_and_profile_win_over_the_shells(shell: None, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    keys = ngs.aws_settings({"aws:region": STACK_REGION, "aws:accessKey": "AKIASTACK00000000000",
                             "aws:secretKey": "stack-secret"})
    session = ngs.aws_session(keys, "us-east-1")
    assert (session.get_credentials().access_key, session.region_name) == ("AKIASTACK00000000000", STACK_REGION)
    config = tmp_path / "config"
    config.write_text("[profile deploy]\naws_access_key_id = AKIAPROFILE000000000\naws_secret_access_key = x\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    session = ngs.aws_session(ngs.aws_settings({"aws:profile": "deploy"}), STACK_REGION)
    assert session.get_credentials().access_key == "AKIAPROFILE000000000"


def test_assumed_roles_take_the_aws_providers_settings() -> None:
    v7 = ngs.aws_settings({"aws:assumeRoles": json.dumps([
        {"roleArn": "arn:aws:iam::1:role/a", "externalId": "x", "duration": "1h30m", "tags": {"team": "web"}},
        {"roleArn": "arn:aws:iam::2:role/b", "sessionName": "second", "policyArns": ["arn:aws:iam::aws:policy/P"]},
    ])})
    assert v7["assume_roles"] == [
        {"RoleArn": "arn:aws:iam::1:role/a", "RoleSessionName": "pulumi-node-group-scaling", "ExternalId": "x",
         "DurationSeconds": 5400, "Tags": [{"Key": "team", "Value": "web"}]},
        {"RoleArn": "arn:aws:iam::2:role/b", "RoleSessionName": "second",
         "PolicyArns": [{"arn": "arn:aws:iam::aws:policy/P"}]},
    ]
    v6 = ngs.aws_settings({"aws:assumeRole": json.dumps({"roleArn": "arn:aws:iam::1:role/a"})})
    assert [r["RoleArn"] for r in v6["assume_roles"]] == ["arn:aws:iam::1:role/a"]
    with pytest.raises(ValueError, match="aws:assumeRoles duration '90 minutes'"):
        ngs.aws_settings({"aws:assumeRoles": json.dumps([{"roleArn": "r", "duration": "90 minutes"}])})


# A fresh interpreter, as the plugin host is, in which the provider's module cannot be imported:
# as after a rename or move of the module, for a provider stored in the state before it.
LOAD_WITHOUT_THE_MODULE = """
import base64, json, sys
sys.modules["stack"] = None
import boto3, dill
from moto import mock_aws
from pulumi import dynamic
provider = dill.loads(base64.b64decode(sys.stdin.read()))
provider.configure(dynamic.ConfigureRequest(dynamic.Config(json.loads(sys.argv[1]), "django-eks")))
with mock_aws():
    sts = boto3.client("sts", region_name="us-east-1")
    c = sts.assume_role(RoleArn=sys.argv[2], RoleSessionName="setup")["Credentials"]
    eks = boto3.client("eks", region_name=sys.argv[3], aws_access_key_id=c["AccessKeyId"],
                       aws_secret_access_key=c["SecretAccessKey"], aws_session_token=c["SessionToken"])
    eks.create_cluster(name="main", roleArn="arn:aws:iam::111111111111:role/e", resourcesVpcConfig={"subnetIds": ["s"]})
    eks.create_nodegroup(clusterName="main", nodegroupName="web-1", subnets=["s"], nodeRole="arn:aws:iam::111111111111:role/n",
                         scalingConfig={"minSize": 1, "desiredSize": 2, "maxSize": 3})
    props = {"region": sys.argv[3], "cluster_name": "main", "node_group_name": "web-1", "min_size": 1, "max_size": 3}
    provider.update("main/web-1", props, {**props, "min_size": 4, "max_size": 5})
    print(json.dumps(provider.read("main/web-1", props).outs))
"""


def test_a_stored_provider_loads_after_its_module_is_renamed(tmp_path: Path) -> None:
    """The SDK stores the provider as dill pickles it (pulumi/dynamic/dynamic.py
    serialize_provider, run by dynamic.Resource under `_serialize`), and the plugin host loads it
    with dill.loads (pulumi/dynamic/__main__.py get_provider)."""
    blob, _ = _serialize(True, serialize_provider, ngs._NodeGroupScalingProvider())
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PYTHON"))}
    env.update(AWS_ACCESS_KEY_ID="AKIASHELL00000000000", AWS_SECRET_ACCESS_KEY="x",
               AWS_CONFIG_FILE=str(tmp_path / "none"), AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"))
    result = subprocess.run(
        [sys.executable, "-c", LOAD_WITHOUT_THE_MODULE, json.dumps(STACK_CONFIG), STACK_ROLE, STACK_REGION],
        input=blob, capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    outs = json.loads(result.stdout.strip().splitlines()[-1])
    assert (outs["min_size"], outs["max_size"]) == (4, 5)


def test_a_provider_stored_by_reference_still_loads_from_the_old_module_path() -> None:
    import dill  # type: ignore[import-untyped]

    # What stacks deployed before providers were stored by value hold: the provider class named
    # by module path and name (a pickle GLOBAL), as dill wrote it then.
    stored = b"cstack.autoscaling.node_group_scaling\n_NodeGroupScalingProvider\n."
    assert dill.loads(stored) is ngs._NodeGroupScalingProvider
