"""`Workloads` under Pulumi's mock engine, with a monitor that keeps what plain mocks drop
(dependencies, parents, providers and the secret-marked inputs)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc

from stack.config.model import StackConfig
from stack.tools.offline import S3_PREFIX_LIST_CIDRS
from stack.workloads.component import Workloads, WorkloadsArgs
from tests.infra.support.manifests import IMAGE, PROXY_IMAGE

SECRET_SIG = rpc._special_sig_key

SECRET_MARK = rpc._special_secret_sig
DATABASE_URL = "postgres://app:database-password-value@db.internal:5432/app?sslmode=require"

REDIS_TOKEN = "redis-token-value"

REDIS_URL = f"rediss://:{REDIS_TOKEN}@redis.internal:6379/0?ssl_cert_reqs=required"

GENERATED_KEY = "generatedsecretkeyvalue"


@dataclass
class Registration:
    type: str
    name: str
    urn: str
    inputs: dict[str, Any]
    dependencies: list[str]
    parent: str
    provider: str


class Mocks(pulumi.runtime.Mocks):
    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        state = dict(args.inputs)
        if args.typ.startswith("kubernetes:") and "metadata" in state:
            # The provider generates names for objects registered without one.
            state["metadata"] = {"name": f"{args.name}-generated", **state["metadata"]}
        if args.typ == "random:index/randomPassword:RandomPassword":
            state["result"] = GENERATED_KEY
        state.setdefault("arn", f"arn:aws:mock::123456789012:{args.name}")
        state.setdefault("name", args.name)
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        return {}


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """Keeps the dependencies and raw (secret-marked) inputs that plain mocks drop."""

    def __init__(self, mocks: Mocks) -> None:
        super().__init__(mocks)
        self.registered: list[Registration] = []

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        self.registered.append(
            Registration(
                type=request.type,
                name=request.name,
                urn=response.urn,
                inputs=rpc.deserialize_properties(request.object, keep_unknowns=True),
                dependencies=list(request.dependencies),
                parent=request.parent,
                provider=request.provider,
            )
        )
        return response

    def one(self, type_: str) -> Registration:
        matches = [r for r in self.registered if r.type == type_]
        assert len(matches) == 1, f"{type_}: {len(matches)} registered"
        return matches[0]


def recording_monitor() -> RecordingMonitor:
    """Pulumi's mocks for the next program, recorded."""
    mocks = Mocks()
    recording = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project="django-eks", stack="test", preview=False, monitor=recording)
    return recording


def run(program: Callable[[], Any]) -> dict[str, Any]:
    """Runs `program` under the mocks until every registration and output has settled; the
    values of the Outputs it returns (a dict of them) come back resolved."""
    resolved: dict[str, Any] = {}

    @pulumi.runtime.test
    def settle() -> Any:
        outputs = program() or {}
        return pulumi.Output.all(**outputs).apply(resolved.update)

    settle()
    return resolved


def workloads(config: StackConfig, depends_on: Sequence[pulumi.Resource] = (), **opts: Any) -> Workloads:
    """The component for `config` on a cluster provider, after `depends_on`, with resource options `opts`."""
    provider = k8s.Provider("cluster", kubeconfig="{}")
    return Workloads(
        "app",
        WorkloadsArgs(
            config=config,
            provider=provider,
            target_group_arn="arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/0123",
            alb_dns_name="alb-123.us-east-1.elb.amazonaws.com",
            app_url="http://alb-123.us-east-1.elb.amazonaws.com",
            redis_url=pulumi.Output.secret(REDIS_URL),
            redis_auth_token=pulumi.Output.secret(REDIS_TOKEN),
            database_url=pulumi.Output.secret(DATABASE_URL),
            image=pulumi.Output.from_input(IMAGE),
            proxy_image=PROXY_IMAGE,
            s3_cidrs=list(S3_PREFIX_LIST_CIDRS),
            depends_on=depends_on,
        ),
        pulumi.ResourceOptions(**opts),
    )
