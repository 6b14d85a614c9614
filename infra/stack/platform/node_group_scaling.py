"""A managed node group's minSize and maxSize after creation, without undoing the autoscaler.

EKS's UpdateNodegroupConfig checks min <= desired <= max over the whole scaling config and
answers 400 `InvalidParameterException: Minimum capacity 3 can't be greater than desired size
2` otherwise (reported against the Terraform provider the NodeGroup resource is built on:
terraform-aws-modules/terraform-aws-eks#3306 and #3521, aws/containers-roadmap#1259). The
NodeGroup resource ignores `desiredSize` after creation, so that the Cluster Autoscaler's
choice stands, and therefore sends the desired size it was *created* with: raising `minSize`
above it (or lowering `maxSize` below it) fails `pulumi up`.

So the NodeGroup sets min, desired and max once, at creation, and `NodeGroupScaling` owns min
and max afterwards. On a change it reads the group's live desired size and sends
`desiredSize = clamp(live, minSize, maxSize)` with the new bounds: the live size when it is
within them (the autoscaler's choice is untouched), else the nearest bound (EKS would refuse
anything else). It then waits for the update to finish, so what depends on the node group
sees the new size.

The provider runs in the dynamic-provider plugin, not in the program: it reaches AWS with the
stack's `aws:` settings (region, profile, keys, assumed roles), handed to its `configure`, so
that a shell with other credentials cannot point it at another account. `read` reports the
live bounds (and a deleted group), so that `pulumi refresh` sees changes made in the console.
The provider is stored in the state by value, so that moving this module cannot strand it.
"""

from __future__ import annotations

import json
import re
import time
import types
from typing import Any

import pulumi
import pulumi.dynamic as dynamic

UPDATE_TIMEOUT_SECONDS = 20 * 60
"""Longest wait for EKS to apply a scaling update (it resizes the Auto Scaling group)."""

POLL_SECONDS = 10

_FINISHED = ("Successful", "Failed", "Cancelled")


def scaling_config(*, live_desired: int, min_size: int, max_size: int) -> dict[str, int]:
    """The UpdateNodegroupConfig scalingConfig that moves the bounds and keeps the live size."""
    if not 0 <= min_size <= max_size:
        raise ValueError(f"minSize {min_size} and maxSize {max_size} must satisfy 0 <= minSize <= maxSize")
    desired = min(max(live_desired, min_size), max_size)
    return {"minSize": min_size, "maxSize": max_size, "desiredSize": desired}


def bounds_changed(olds: dict[str, Any], news: dict[str, Any]) -> list[str]:
    return [key for key in ("min_size", "max_size", "cluster_name", "node_group_name") if olds.get(key) != news.get(key)]


_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def duration_seconds(duration: str) -> int:
    """A Go duration as the AWS provider takes `assumeRoles[].duration` ("1h", "15m30s")."""
    parts = re.findall(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", duration)
    if not parts or "".join(number + unit for number, unit in parts) != duration:
        raise ValueError(f"aws:assumeRoles duration {duration!r} is not a duration such as 1h or 15m")
    return int(sum(float(number) * _DURATION_UNITS[unit] for number, unit in parts))


def assume_role_request(role: dict[str, Any]) -> dict[str, Any]:
    """STS AssumeRole parameters from one `aws:assumeRoles` entry (pulumi_aws's
    config.outputs.AssumeRole: roleArn, sessionName, externalId, duration, policy, policyArns,
    tags, transitiveTagKeys, sourceIdentity)."""
    if not role.get("roleArn"):
        raise ValueError("aws:assumeRoles: every entry needs a roleArn")
    request: dict[str, Any] = {
        "RoleArn": role["roleArn"],
        "RoleSessionName": role.get("sessionName") or "pulumi-node-group-scaling",
    }
    if role.get("externalId"):
        request["ExternalId"] = role["externalId"]
    if role.get("duration"):
        request["DurationSeconds"] = duration_seconds(role["duration"])
    if role.get("policy"):
        request["Policy"] = role["policy"]
    if role.get("policyArns"):
        request["PolicyArns"] = [{"arn": arn} for arn in role["policyArns"]]
    if role.get("tags"):
        request["Tags"] = [{"Key": k, "Value": v} for k, v in sorted(role["tags"].items())]
    if role.get("transitiveTagKeys"):
        request["TransitiveTagKeys"] = list(role["transitiveTagKeys"])
    if role.get("sourceIdentity"):
        request["SourceIdentity"] = role["sourceIdentity"]
    return request


def _config_object(key: str, raw: Any) -> Any:
    """A structured config value: the engine hands the provider every value as its YAML text."""
    if not isinstance(raw, str):
        return raw
    try:
        return json.loads(raw)
    except ValueError as error:
        raise ValueError(f"{key} must be JSON/YAML structured config: {error}") from None


def aws_settings(config: Any) -> dict[str, Any]:
    """The stack's AWS provider settings, read from the `aws:` keys the engine passes to the
    dynamic provider's configure (its ConfigureRequest carries the whole stack config with
    namespaces kept: pulumi/pulumi pkg/resource/deploy/target.go GetPackageConfig)."""
    roles: list[dict[str, Any]] = []
    if config.get("aws:assumeRoles"):
        roles = list(_config_object("aws:assumeRoles", config.get("aws:assumeRoles")))
    elif config.get("aws:assumeRole"):  # pulumi-aws before v7: a single role
        roles = [_config_object("aws:assumeRole", config.get("aws:assumeRole"))]
    return {
        "region": config.get("aws:region"),
        "profile": config.get("aws:profile"),
        "access_key": config.get("aws:accessKey"),
        "secret_key": config.get("aws:secretKey"),
        "token": config.get("aws:token"),
        "assume_roles": [assume_role_request(role) for role in roles],
    }


def aws_session(settings: dict[str, Any], region: str) -> Any:
    """A boto3 session with the stack's credentials and region, after its role chain.

    With a profile or keys in the stack config they are used, not the shell's environment;
    with neither, boto3's default chain (as the AWS provider itself does)."""
    import boto3

    session = boto3.Session(
        profile_name=settings["profile"],
        aws_access_key_id=settings["access_key"],
        aws_secret_access_key=settings["secret_key"],
        aws_session_token=settings["token"],
        region_name=settings["region"] or region,
    )
    for request in settings["assume_roles"]:
        credentials = session.client("sts").assume_role(**request)["Credentials"]
        session = boto3.Session(
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
            region_name=settings["region"] or region,
        )
    return session


class _NodeGroupScalingProvider(dynamic.ResourceProvider):
    """Runs in the dynamic provider's plugin with the stack's AWS settings (`configure`)."""

    _aws: dict[str, Any] | None = None

    def configure(self, req: dynamic.ConfigureRequest) -> None:
        self._aws = aws_settings(req.config)

    def _eks(self, props: dict[str, Any]) -> Any:
        settings = self._aws if self._aws is not None else aws_settings({})
        return aws_session(settings, props["region"]).client("eks")

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.DiffResult:
        # A provider stored by other code (older, or stored by reference before it was stored by
        # value) is an update too, as in the SDK's own diff: it brings the state's copy up to date
        # and changes nothing in AWS while the bounds are the same.
        changed = bounds_changed(olds, news) or olds.get("__provider") != news.get("__provider")
        return dynamic.DiffResult(changes=bool(changed), replaces=[], delete_before_replace=False)

    def create(self, props: dict[str, Any]) -> dynamic.CreateResult:
        self._apply(props)
        return dynamic.CreateResult(id_=f"{props['cluster_name']}/{props['node_group_name']}", outs=props)

    def read(self, id_: str, props: dict[str, Any]) -> dynamic.ReadResult:
        """The live bounds, so that `pulumi refresh` records a change made outside Pulumi (and
        the next `pulumi up` puts the configured bounds back); an empty id when the node group
        is gone, which tells the engine to drop the resource from the state."""
        eks = self._eks(props)
        try:
            group = eks.describe_nodegroup(clusterName=props["cluster_name"], nodegroupName=props["node_group_name"])
        except eks.exceptions.ResourceNotFoundException:
            return dynamic.ReadResult(id_="", outs={})
        live = group["nodegroup"]["scalingConfig"]
        return dynamic.ReadResult(
            id_=id_, outs={**props, "min_size": int(live["minSize"]), "max_size": int(live["maxSize"])}
        )

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> dynamic.UpdateResult:
        self._apply(news)
        return dynamic.UpdateResult(outs=news)

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        # The bounds go with the node group itself; nothing to undo.
        return None

    def _apply(self, props: dict[str, Any]) -> None:
        eks = self._eks(props)
        names = {"clusterName": props["cluster_name"], "nodegroupName": props["node_group_name"]}
        live = eks.describe_nodegroup(**names)["nodegroup"]["scalingConfig"]
        wanted = scaling_config(
            live_desired=int(live["desiredSize"]),
            min_size=int(props["min_size"]),
            max_size=int(props["max_size"]),
        )
        if all(int(live[key]) == value for key, value in wanted.items()):
            return
        update = eks.update_nodegroup_config(**names, scalingConfig=wanted)["update"]
        deadline = time.monotonic() + UPDATE_TIMEOUT_SECONDS
        while update["status"] not in _FINISHED:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"node group {props['node_group_name']}: scaling update {update['id']} still "
                    f"{update['status']} after {UPDATE_TIMEOUT_SECONDS}s"
                )
            time.sleep(POLL_SECONDS)
            update = eks.describe_update(name=props["cluster_name"], updateId=update["id"],
                                         nodegroupName=props["node_group_name"])["update"]
        if update["status"] != "Successful":
            raise RuntimeError(
                f"node group {props['node_group_name']}: scaling update {update['id']} "
                f"{update['status']}: {update.get('errors')}"
            )


def _pickled_by_value(*objects: Any) -> None:
    """Store these functions and classes in the state by value.

    The SDK stores the provider pickled with dill (pulumi/dynamic/dynamic.py serialize_provider),
    and dill stores a class or function by reference (module and name) whenever it can import it
    from there; only those whose module is `__main__` (or None) it stores by value, code and
    all (dill/_dill.py `_locate_function`). By reference, moving or renaming this module would
    make every stored provider fail to load, and with it the refresh and delete of old state.
    The code's file name is made relative, so that the stored provider is the same from every
    checkout (an absolute path would change it with the machine that runs `pulumi up`).
    """
    for obj in objects:
        members = [obj, *vars(obj).values()] if isinstance(obj, type) else [obj]
        for member in members:
            member = getattr(member, "__func__", member)
            if isinstance(member, (type, types.FunctionType)):
                member.__module__ = "__main__"
            if isinstance(member, types.FunctionType):
                member.__code__ = _relative_file_name(member.__code__)


def _relative_file_name(code: types.CodeType) -> types.CodeType:
    constants = tuple(_relative_file_name(c) if isinstance(c, types.CodeType) else c for c in code.co_consts)
    return code.replace(co_filename=_SOURCE, co_consts=constants)


# The file name stored with the code: this module's path when providers were first stored by
# value. Kept when the module moved, so that the stored provider stays byte for byte the same
# (a new name would show every NodeGroupScaling as changed in the next preview).
_SOURCE = "stack/autoscaling/node_group_scaling.py"


_pickled_by_value(
    _NodeGroupScalingProvider, scaling_config, bounds_changed, duration_seconds, assume_role_request,
    _config_object, aws_settings, aws_session,
)


class NodeGroupScaling(dynamic.Resource):
    """minSize and maxSize of one managed node group, after its creation."""

    def __init__(
        self,
        name: str,
        *,
        region: str,
        cluster_name: pulumi.Input[str],
        node_group_name: pulumi.Input[str],
        min_size: int,
        max_size: int,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(
            _NodeGroupScalingProvider(),
            name,
            {
                "region": region,
                "cluster_name": cluster_name,
                "node_group_name": node_group_name,
                "min_size": min_size,
                "max_size": max_size,
            },
            opts,
        )
