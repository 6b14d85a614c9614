"""Run the real Pulumi program offline, against Pulumi's mock engine.

The program runs exactly as the Pulumi CLI's Python language host runs it (`runpy` on the
`main` directory of Pulumi.yaml, the stack file's config in the runtime), except that
resource registrations go to an in-process monitor that records them and answers with
placeholders for the values only the cloud knows (endpoints, ARNs, generated passwords).
Every placeholder contains the word "placeholder", so nobody mistakes one for a real value
(except random hex IDs, which must stay hex to be checked like the real thing; they are
derived from the resource name, so runs are reproducible).

The mock account maps availability zone names to zone IDs the way a real account does: not in
name order (see `zone_mapping`), so a program that picks zones by name is caught here.

Used by the offline plan (`python -m stack.tools.plan`) and by the tests.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import runpy
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from stack.config.loader import load_stack_config, pulumi_config_of, stack_file, stack_names
from stack.config.model import PROJECT, StackConfig

__all__ = ["pulumi_config_of", "stack_file", "stack_names"]  # read through stack.config.loader

REPO_ROOT = Path(__file__).resolve().parents[3]
ACCOUNT_ID = "123456789012"
PLACEHOLDER = "placeholder"
S3_PREFIX_LIST_CIDRS = ("3.5.0.0/19", "52.216.0.0/15", "54.231.0.0/16")
"""The mock account's answer for the region's S3 prefix list (DescribePrefixLists): public ranges
of the kind AWS lists for S3 (ip-ranges.json, service "S3"), not a copy of any region's list."""
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
"""Pulumi's marker of a secret value in serialized properties."""


def is_secret(value: Any) -> bool:
    """Whether a recorded input value was a Pulumi secret when the program registered it."""
    return isinstance(value, dict) and value.get("4dabf18193072939515e22adb298388d") == SECRET_SIG


def redact(value: Any) -> Any:
    """The value with every secret replaced by "[secret]", for printing."""
    if is_secret(value):
        return "[secret]"
    if isinstance(value, dict):
        return {k: redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


@dataclass(frozen=True)
class RecordedResource:
    type: str
    name: str
    inputs: dict[str, Any]
    custom: bool
    urn: str
    parent: str
    dependencies: list[str]
    ignore_changes: list[str]
    retain_on_delete: bool = False
    outputs: dict[str, Any] = field(default_factory=dict)
    """What the mock engine answered: the inputs plus placeholders for cloud-known values."""
    replace_on_changes: list[str] = field(default_factory=list)
    delete_before_replace: bool = False
    provider: str = ""
    """The URN of the explicit provider a custom resource names ("" for the default provider)."""

    @property
    def redacted_inputs(self) -> dict[str, Any]:
        """The inputs with secrets shown as "[secret]"."""
        result: dict[str, Any] = redact(self.inputs)
        return result


@dataclass
class OfflineRun:
    stack: str
    region: str
    zones: list[tuple[str, str]]
    """The mock account's (zone name, zone ID) pairs."""
    config: StackConfig
    resources: list[RecordedResource]
    outputs: dict[str, Any]
    secret_outputs: set[str] = field(default_factory=set)

    def of_type(self, type_: str) -> list[RecordedResource]:
        return [r for r in self.resources if r.type == type_]

    def named(self, type_: str, name: str) -> RecordedResource:
        matches = [r for r in self.of_type(type_) if r.name == name]
        if len(matches) != 1:
            raise KeyError(f"{len(matches)} resources of type {type_} named {name}")
        return matches[0]

    def by_urn(self, urn: str) -> RecordedResource:
        return next(r for r in self.resources if r.urn == urn)


def _digest(text: str, length: int = 8) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


_DIRECTIONS = {
    "north": "n", "south": "s", "east": "e", "west": "w", "central": "c",
    "northeast": "ne", "southeast": "se", "northwest": "nw", "southwest": "sw",
}
# How one account sees the six zones of a region: name letter -> zone ID number. Every account
# gets its own shuffle from AWS; this one puts use1-az3 (which EKS refuses) second by name.
_ZONE_NUMBER_BY_LETTER = {"a": 4, "b": 3, "c": 6, "d": 1, "e": 2, "f": 5}


def zone_id_prefix(region: str) -> str:
    """The zone ID prefix of a region: us-east-1 -> use1, ap-northeast-2 -> apne2."""
    parts = region.split("-")
    area, number = parts[0], parts[-1]
    direction = "".join(_DIRECTIONS.get(p, p[:1]) for p in parts[1:-1] if p != "gov")
    return f"{area}{'g' if 'gov' in parts else ''}{direction}{number}"


def zone_mapping(region: str) -> list[tuple[str, str]]:
    """(zone name, zone ID) pairs of the mock account, in name order."""
    prefix = zone_id_prefix(region)
    return [(f"{region}{letter}", f"{prefix}-az{n}") for letter, n in _ZONE_NUMBER_BY_LETTER.items()]
def image_digest(repository: str, tag: str) -> str:
    """The digest the offline registry gives the image `tag` of `repository`."""
    return "sha256:" + hashlib.sha256(f"{PLACEHOLDER} image {repository}:{tag}".encode()).hexdigest()


def configured_image_tags(pulumi_config: Mapping[str, str]) -> list[str]:
    """The image tag a stack's config names, if any."""
    raw = pulumi_config.get(f"{PROJECT}:image")
    tag = json.loads(raw).get("tag") if raw else None
    return [str(tag)] if tag else []


class OfflineMocks(pulumi.runtime.Mocks):
    """Answers registrations and data-source calls with clearly marked placeholders."""

    def __init__(
        self,
        region: str,
        zones: list[tuple[str, str]] | None = None,
        deployer: str = f"{PLACEHOLDER}-deployer",
        registry_tags: Sequence[str] = (),
    ) -> None:
        self.region = region
        self.zones = zone_mapping(region) if zones is None else zones
        self.deployer = deployer
        """The role name of whoever runs the program (the caller identity)."""
        self.registry_tags = list(registry_tags)
        """The image tags every ECR repository holds."""

    def _arn(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{self.region}:{ACCOUNT_ID}:{resource}"

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        name, inputs = args.name, dict(args.inputs)
        ph = f"{name}-{PLACEHOLDER}"
        state: dict[str, Any] = {**inputs}
        typ = args.typ
        if typ == "aws:eks/cluster:Cluster":
            state["endpoint"] = f"https://{PLACEHOLDER}-{_digest(name)}.gr7.{self.region}.eks.amazonaws.com"
            state["certificateAuthority"] = {
                "data": base64.b64encode(f"{PLACEHOLDER} certificate authority".encode()).decode()
            }
            state["vpcConfig"] = {
                **inputs.get("vpcConfig", {}),
                "clusterSecurityGroupId": f"sg-{PLACEHOLDER}-cluster",
            }
            state["arn"] = self._arn("eks", f"cluster/{inputs.get('name', ph)}")
        elif typ == "aws:lb/loadBalancer:LoadBalancer":
            state["dnsName"] = f"{ph}-{_digest(name)}.{self.region}.elb.amazonaws.com"
            state["arn"] = self._arn("elasticloadbalancing", f"loadbalancer/app/{ph}/{_digest(name, 16)}")
            state["arnSuffix"] = state["arn"].split(":loadbalancer/", 1)[1]
            # The Route 53 zone of the region's ALB names, which alias records point into.
            state["zoneId"] = f"Z{PLACEHOLDER.upper()}ELB"
        elif typ == "aws:lb/targetGroup:TargetGroup":
            state["arn"] = self._arn("elasticloadbalancing", f"targetgroup/{ph}/{_digest(name, 16)}")
            state["arnSuffix"] = state["arn"].rsplit(":", 1)[1]
        elif typ == "aws:elasticache/replicationGroup:ReplicationGroup":
            state["primaryEndpointAddress"] = f"master.{ph}.{_digest(name, 6)}.cache.amazonaws.com"
            # Cluster mode off: the nodes are member clusters `<group id>-001`, `-002`, ...
            nodes = int(inputs.get("numCacheClusters", 1))
            state["memberClusters"] = [f"{ph}-{n:03d}" for n in range(1, nodes + 1)]
        elif typ == "aws:rds/instance:Instance":
            state["address"] = f"{ph}.{_digest(name, 12)}.{self.region}.rds.amazonaws.com"
            state["endpoint"] = f"{state['address']}:{inputs.get('port', 5432)}"
            state["identifier"] = inputs.get("identifier", ph)
        elif typ == "aws:ecr/repository:Repository":
            state["repositoryUrl"] = f"{ACCOUNT_ID}.dkr.ecr.{self.region}.amazonaws.com/{ph}"
            state["registryId"] = ACCOUNT_ID
        elif typ == "aws:eks/nodeGroup:NodeGroup":
            state["nodeGroupName"] = f"{ph}-{_digest(name)}"
            # EKS names the group's Auto Scaling group "eks-<node group>-<uuid>".
            state["resources"] = [
                {"autoscalingGroups": [{"name": f"eks-{state['nodeGroupName']}-{PLACEHOLDER}"}]}
            ]
        elif typ == "aws:amp/workspace:Workspace":
            workspace = f"ws-{PLACEHOLDER}-{_digest(name)}"
            state["arn"] = self._arn("aps", f"workspace/{workspace}")
            # The endpoint ends with the workspace's path and a slash, as AMP answers it.
            state["prometheusEndpoint"] = f"https://aps-workspaces.{self.region}.amazonaws.com/workspaces/{workspace}/"
            return workspace, state
        elif typ == "aws:amp/scraper:Scraper":
            state["roleArn"] = (
                f"arn:aws:iam::{ACCOUNT_ID}:role/aws-service-role/scraper.aps.amazonaws.com/"
                f"AWSServiceRoleForAmazonPrometheusScraper_{PLACEHOLDER}"
            )
        elif typ == "aws:ec2/launchTemplate:LaunchTemplate":
            state["latestVersion"] = 1
        elif typ == "aws:iam/role:Role":
            state["arn"] = f"arn:aws:iam::{ACCOUNT_ID}:role/{ph}"
        elif typ == "random:index/randomId:RandomId":
            byte_length = int(inputs.get("byteLength", 4))
            state["hex"] = hashlib.sha256(name.encode()).hexdigest()[: 2 * byte_length]
            state["dec"] = str(int(state["hex"], 16))
        elif typ == "random:index/randomPassword:RandomPassword":
            # Letters and digits only, like the real generator with special=False.
            alphabet = string.ascii_letters + string.digits
            seed = hashlib.sha256(name.encode()).digest()
            tail = "".join(alphabet[b % len(alphabet)] for b in seed)
            state["result"] = (PLACEHOLDER + tail)[: int(inputs.get("length", 32))]
        if typ.startswith("kubernetes:") and typ != "kubernetes:helm.sh/v3:Release":
            # The Kubernetes provider names objects without metadata.name "<name>-<random>".
            metadata = dict(inputs.get("metadata") or {})
            metadata.setdefault("name", f"{name}-{PLACEHOLDER}")
            state["metadata"] = metadata
        state.setdefault("name", inputs.get("name", ph))
        state.setdefault("arn", self._arn(typ.split(":")[1].split("/")[0], ph))
        return f"{ph}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs) -> Any:
        token = args.token
        if token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": ACCOUNT_ID,
                "arn": f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/{self.deployer}/session",
                "userId": f"AROA{PLACEHOLDER.upper()}:session",
                "id": ACCOUNT_ID,
            }
        if token == "aws:iam/getSessionContext:getSessionContext":
            return {
                "arn": args.args["arn"],
                "issuerArn": f"arn:aws:iam::{ACCOUNT_ID}:role/{self.deployer}",
                "issuerId": f"AROA{PLACEHOLDER.upper()}",
                "issuerName": self.deployer,
                "sessionName": "session",
                "id": args.args["arn"],
            }
        if token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            excluded = set(args.args.get("excludeZoneIds") or ())
            zones = [(n, z) for n, z in self.zones if z not in excluded]
            return {
                "names": [n for n, _ in zones],
                "zoneIds": [z for _, z in zones],
                "id": self.region,
            }
        if token == "aws:ecr/getImages:getImages":
            repository = args.args["repositoryName"]
            # One identifier per tag, and an untagged image (a build's leftover layer set).
            tagged = [{"imageTag": tag, "imageDigest": image_digest(repository, tag)} for tag in self.registry_tags]
            untagged = {"imageDigest": image_digest(repository, "")}
            return {"imageIds": [*tagged, untagged], "repositoryName": repository, "id": repository}
        if token == "aws:ec2/getPrefixList:getPrefixList" and args.args.get("name") == f"com.amazonaws.{self.region}.s3":
            # Only the region's S3 list: a program asking for another name gets no CIDRs.
            return {
                "cidrBlocks": list(S3_PREFIX_LIST_CIDRS),
                "name": args.args["name"],
                "prefixListId": f"pl-{PLACEHOLDER}",
                "id": f"pl-{PLACEHOLDER}",
            }
        if token == "aws:eks/getAddonVersion:getAddonVersion":
            # The real answer is the newest build for that Kubernetes version, e.g.
            # v1.20.1-eksbuild.1; the placeholder names the version it was resolved for.
            addon, kubernetes = args.args["addonName"], args.args["kubernetesVersion"]
            return {
                "addonName": addon,
                "kubernetesVersion": kubernetes,
                "version": f"v0.0.0-{PLACEHOLDER}-for-{kubernetes}",
                "id": addon,
            }
        return {}


class _RecordingMonitor(pulumi_mocks.MockMonitor):
    """The mock monitor, also keeping what plain mocks drop: parent, dependencies, options."""

    def __init__(self, mocks: OfflineMocks, recorded: list[RecordedResource]) -> None:
        super().__init__(mocks)
        self.recorded = recorded

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if request.type != "pulumi:pulumi:Stack":
            from pulumi.runtime import rpc

            self.recorded.append(
                RecordedResource(
                    type=request.type,
                    name=request.name,
                    inputs=rpc.deserialize_properties(request.object),
                    custom=bool(request.custom),
                    urn=response.urn,
                    parent=request.parent,
                    dependencies=list(request.dependencies),
                    ignore_changes=list(request.ignoreChanges),
                    retain_on_delete=bool(request.retainOnDelete),
                    outputs=rpc.deserialize_properties(response.object),
                    replace_on_changes=list(request.replaceOnChanges),
                    delete_before_replace=bool(request.deleteBeforeReplace),
                    # A provider reference is "<urn>::<id>".
                    provider=request.provider.rsplit("::", 1)[0] if request.provider else "",
                )
            )
        return response


def _cancel_leftover_tasks() -> None:
    """Cancel what a failed program left pending (registrations waiting on the failed value),
    so that it cannot run, and fail, inside the next program run on the same event loop."""
    loop = asyncio.get_event_loop()
    pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in pending:
        task.cancel()
    if pending and not loop.is_running():
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    # The runtime keeps every Output's task in a module-wide set and awaits them at the end of
    # each run: drop the failed run's, or the next run re-raises them.
    with pulumi_settings.SETTINGS.lock:
        pulumi_settings.SETTINGS.outputs.clear()


def run_program(
    pulumi_config: Mapping[str, str],
    *,
    stack: str = "offline",
    root: Path = REPO_ROOT,
    recorded: list[RecordedResource] | None = None,
    zones: list[tuple[str, str]] | None = None,
    deployer: str = f"{PLACEHOLDER}-deployer",
    registry_tags: Sequence[str] | None = None,
    preview: bool = False,
    mocks_type: type[OfflineMocks] = OfflineMocks,
    secret_keys: Sequence[str] = (),
) -> OfflineRun:
    """Run `<root>/infra` with the given config under the mock engine and record everything.

    `recorded`, when given, receives each resource as it registers, so a caller still sees
    what was registered when the program fails. `zones` replaces the mock account's
    (zone name, zone ID) pairs. `deployer` is the role name the caller identity reports;
    `registry_tags` the image tags the registry holds (by default the one the config names, as
    after the deploy workflow pushed it); `preview` runs it as `pulumi preview` does;
    `mocks_type` answers the registrations and calls in place of `OfflineMocks`;
    `secret_keys` the config keys handed over as secrets, decrypted, as the engine hands over a
    key holding `secure:` values (a stack file read offline has only their ciphertext).
    """
    region = pulumi_config.get("aws:region", "us-east-1")
    tags = configured_image_tags(pulumi_config) if registry_tags is None else registry_tags
    mocks = mocks_type(region, zones, deployer, tags)
    monitor = _RecordingMonitor(mocks, [] if recorded is None else recorded)
    pulumi_settings.set_root_resource(None)  # type: ignore[arg-type]
    pulumi.runtime.set_all_config(dict(pulumi_config), list(secret_keys))
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=preview, monitor=monitor)
    root_stack = pulumi_settings.get_root_resource()
    program = str(root / "infra")

    def main() -> None:
        runpy.run_path(program, run_name="__main__")

    try:
        _sync_await(run_pulumi_func(main))
    except BaseException:
        _cancel_leftover_tasks()
        raise

    outputs: dict[str, Any] = {}
    secret: set[str] = set()
    exported: dict[str, Any] = getattr(root_stack, "outputs", {})
    for key, value in exported.items():
        output = pulumi.Output.from_input(value)
        outputs[key] = _sync_await(output.future())
        if _sync_await(output.is_secret()):
            secret.add(key)
    return OfflineRun(
        stack=stack,
        region=region,
        zones=list(mocks.zones),
        config=load_stack_config(),
        resources=list(monitor.recorded),
        outputs=outputs,
        secret_outputs=secret,
    )


def run_stack(stack: str, root: Path = REPO_ROOT) -> OfflineRun:
    """Run the program offline with the config of Pulumi.<stack>.yaml."""
    return run_program(pulumi_config_of(stack, root), stack=stack, root=root)
