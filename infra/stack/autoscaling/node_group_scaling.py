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
"""

from __future__ import annotations

import time
from typing import Any

import pulumi
import pulumi.dynamic as dynamic

UPDATE_TIMEOUT_SECONDS = 20 * 60
"""Longest wait for EKS to apply a scaling update (it resizes the Auto Scaling group)."""

POLL_SECONDS = 10

_FINISHED = {"Successful", "Failed", "Cancelled"}


def scaling_config(*, live_desired: int, min_size: int, max_size: int) -> dict[str, int]:
    """The UpdateNodegroupConfig scalingConfig that moves the bounds and keeps the live size."""
    if not 0 <= min_size <= max_size:
        raise ValueError(f"minSize {min_size} and maxSize {max_size} must satisfy 0 <= minSize <= maxSize")
    desired = min(max(live_desired, min_size), max_size)
    return {"minSize": min_size, "maxSize": max_size, "desiredSize": desired}


def bounds_changed(olds: dict[str, Any], news: dict[str, Any]) -> list[str]:
    return [key for key in ("min_size", "max_size", "cluster_name", "node_group_name") if olds.get(key) != news.get(key)]


class _NodeGroupScalingProvider(dynamic.ResourceProvider):
    """Runs inside `pulumi up` with the deployer's AWS credentials (boto3's default chain)."""

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.DiffResult:
        changed = bounds_changed(olds, news)
        return dynamic.DiffResult(changes=bool(changed), replaces=[], delete_before_replace=False)

    def create(self, props: dict[str, Any]) -> dynamic.CreateResult:
        self._apply(props)
        return dynamic.CreateResult(id_=f"{props['cluster_name']}/{props['node_group_name']}", outs=props)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> dynamic.UpdateResult:
        self._apply(news)
        return dynamic.UpdateResult(outs=news)

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        # The bounds go with the node group itself; nothing to undo.
        return None

    def _apply(self, props: dict[str, Any]) -> None:
        import boto3

        eks: Any = boto3.client("eks", region_name=props["region"])
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
