"""What the offline run registered, boiled down to the settings a reviewer looks at."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import yaml

SECRET = "[secret]"
# How the Pulumi SDK marks a secret inside deserialized inputs.
_SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d"
_SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"


class Recorded(Protocol):
    """The part of `stack.tools.offline.RecordedResource` the plan reads."""

    @property
    def type(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def inputs(self) -> dict[str, Any]: ...
    @property
    def custom(self) -> bool: ...


def plain(value: Any) -> Any:
    """Inputs as plain YAML/JSON values: secrets masked, whole floats as ints."""
    if isinstance(value, Mapping):
        if value.get(_SECRET_SIG_KEY) == _SECRET_SIG:
            return SECRET
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _get(inputs: Mapping[str, Any], path: str) -> Any:
    value: Any = inputs
    for part in path.split("."):
        if isinstance(value, Mapping):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


_LAUNCH_SETTINGS = (
    ("workers", "WEB_PROCESSES"),
    ("threads", "WEB_THREADS"),
    ("concurrency", "WORKER_CONCURRENCY"),
)
"""What the plan shows of a container's launcher settings (service/config/launch.py)."""


def _workload_settings(inputs: Mapping[str, Any]) -> dict[str, Any]:
    spec = inputs.get("spec") or {}
    settings: dict[str, Any] = {}
    if spec.get("replicas") is not None:
        settings["replicas"] = spec["replicas"]
    containers = _get(inputs, "spec.template.spec.containers") or []
    for container in containers:
        prefix = "" if len(containers) == 1 else f"{container.get('name')}."
        requests = _get(container, "resources.requests") or {}
        limits = _get(container, "resources.limits") or {}
        if requests.get("cpu"):
            settings[f"{prefix}cpu"] = requests["cpu"]
        if requests.get("memory") or limits.get("memory"):
            settings[f"{prefix}memory"] = requests.get("memory") or limits.get("memory")
        env = {item.get("name"): item.get("value") for item in container.get("env") or []}
        for label, name in _LAUNCH_SETTINGS:
            if env.get(name) is not None:
                settings[f"{prefix}{label}"] = str(env[name])
    node_selector = _get(inputs, "spec.template.spec.nodeSelector")
    if node_selector:
        settings["nodeSelector"] = ",".join(f"{k}={v}" for k, v in node_selector.items())
    return settings


_FIELDS: dict[str, tuple[tuple[str, str], ...]] = {
    "aws:ec2/vpc:Vpc": (("cidr", "cidrBlock"),),
    "aws:ec2/subnet:Subnet": (("cidr", "cidrBlock"), ("az", "availabilityZone")),
    "aws:eks/cluster:Cluster": (("name", "name"), ("version", "version")),
    "aws:eks/addon:Addon": (("addon", "addonName"), ("version", "addonVersion")),
    "aws:eks/nodeGroup:NodeGroup": (
        ("instanceTypes", "instanceTypes"),
        ("min", "scalingConfig.minSize"),
        ("desired", "scalingConfig.desiredSize"),
        ("max", "scalingConfig.maxSize"),
        ("capacityType", "capacityType"),
        ("amiType", "amiType"),
        ("diskSize", "diskSize"),
    ),
    "aws:ec2/launchTemplate:LaunchTemplate": (
        ("volumeSize", "blockDeviceMappings.0.ebs.volumeSize"),
        ("volumeType", "blockDeviceMappings.0.ebs.volumeType"),
    ),
    "aws:rds/instance:Instance": (
        ("class", "instanceClass"),
        ("engine", "engine"),
        ("version", "engineVersion"),
        ("storageGiB", "allocatedStorage"),
        ("storageType", "storageType"),
        ("multiAz", "multiAz"),
        ("parameterGroup", "parameterGroupName"),
    ),
    "aws:elasticache/parameterGroup:ParameterGroup": (("family", "family"),),
    "aws:elasticache/replicationGroup:ReplicationGroup": (
        ("nodeType", "nodeType"),
        ("nodes", "numCacheClusters"),
        ("engine", "engine"),
        ("version", "engineVersion"),
        ("clusterMode", "clusterMode"),
        ("multiAz", "multiAzEnabled"),
    ),
    "aws:lb/loadBalancer:LoadBalancer": (
        ("type", "loadBalancerType"),
        ("internal", "internal"),
        ("idleTimeout", "idleTimeout"),
    ),
    "aws:lb/targetGroup:TargetGroup": (("targetType", "targetType"), ("port", "port")),
    "aws:lb/listener:Listener": (("port", "port"), ("protocol", "protocol")),
    "aws:ec2/natGateway:NatGateway": (("connectivity", "connectivityType"),),
    "aws:s3/bucket:Bucket": (("bucket", "bucket"), ("forceDestroy", "forceDestroy")),
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": (
        ("expireDays", "rules.0.expiration.days"),
        ("abortMultipartDays", "rules.0.abortIncompleteMultipartUpload.daysAfterInitiation"),
    ),
    "aws:eks/podIdentityAssociation:PodIdentityAssociation": (
        ("namespace", "namespace"),
        ("serviceAccount", "serviceAccount"),
    ),
    "kubernetes:helm.sh/v3:Release": (
        ("chart", "chart"),
        ("version", "version"),
        ("replicas", "values.replicaCount"),
    ),
    "kubernetes:autoscaling/v2:HorizontalPodAutoscaler": (
        ("min", "spec.minReplicas"),
        ("max", "spec.maxReplicas"),
        ("target", "spec.scaleTargetRef.name"),
    ),
    "kubernetes:keda.sh/v1alpha1:ScaledObject": (
        ("min", "spec.minReplicaCount"),
        ("max", "spec.maxReplicaCount"),
        ("target", "spec.scaleTargetRef.name"),
        ("queue", "spec.triggers.0.metadata.listName"),
        ("jobsPerReplica", "spec.triggers.0.metadata.listLength"),
        ("activation", "spec.triggers.0.metadata.activationListLength"),
    ),
    "aws:autoscaling/tag:Tag": (("key", "tag.key"), ("value", "tag.value")),
    "pulumi-python:dynamic:Resource": (("minSize", "min_size"), ("maxSize", "max_size")),
    "kubernetes:policy/v1:PodDisruptionBudget": (
        ("minAvailable", "spec.minAvailable"),
        ("maxUnavailable", "spec.maxUnavailable"),
    ),
}

def _policy_settings(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """An inline policy as `Effect: actions on resources`, one entry per statement."""
    try:
        document = json.loads(inputs.get("policy") or "")
    except (TypeError, ValueError):
        return {}
    statements = document.get("Statement", [])
    rendered = []
    for statement in statements if isinstance(statements, list) else [statements]:
        actions = statement.get("Action", [])
        resources = statement.get("Resource", [])
        actions = actions if isinstance(actions, list) else [actions]
        resources = resources if isinstance(resources, list) else [resources]
        rendered.append(f"{statement.get('Effect')} {','.join(actions)} on {','.join(resources)}")
    return {"policy": "; ".join(rendered)}


def _scaled_object_queues(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """Every list a ScaledObject watches (one trigger per queue), comma-separated."""
    lists = [_get(t, "metadata.listName") for t in _get(inputs, "spec.triggers") or []]
    return {"queue": ",".join(str(name) for name in lists)} if lists else {}


_SPECIAL: dict[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {
    "kubernetes:keda.sh/v1alpha1:ScaledObject": _scaled_object_queues,
    "kubernetes:apps/v1:Deployment": _workload_settings,
    "kubernetes:apps/v1:StatefulSet": _workload_settings,
    "aws:iam/rolePolicy:RolePolicy": _policy_settings,
    "aws:s3/bucketPolicy:BucketPolicy": _policy_settings,
}


def _hpa_cpu(inputs: Mapping[str, Any]) -> dict[str, Any]:
    for metric in _get(inputs, "spec.metrics") or []:
        target = _get(metric, "resource.target.averageUtilization")
        if target is not None:
            return {"cpuTarget": f"{target}%"}
    return {}


def settings_of(type_: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The settings that matter for a resource type, as plain values."""
    clean = plain(inputs)
    settings: dict[str, Any] = {}
    for label, path in _FIELDS.get(type_, ()):
        value = _get(clean, path)
        if value is not None and value != [] and value != {}:
            settings[label] = value
    if type_ in _SPECIAL:
        settings.update(_SPECIAL[type_](clean))
    if type_ == "kubernetes:autoscaling/v2:HorizontalPodAutoscaler":
        settings.update(_hpa_cpu(clean))
    return settings


@dataclass(frozen=True)
class ResourceLine:
    component: str
    type: str
    name: str
    settings: dict[str, Any]

    def as_json(self) -> dict[str, object]:
        return {"component": self.component, "type": self.type, "name": self.name, "settings": self.settings}


def _component_of(resource: Any, by_urn: Mapping[str, Any]) -> str:
    parent = by_urn.get(getattr(resource, "parent", "") or "")
    while parent is not None and parent.custom:
        parent = by_urn.get(getattr(parent, "parent", "") or "")
    if parent is None:
        return "(stack)"
    return f"{parent.type} {parent.name}"


def resource_lines(resources: Iterable[Recorded]) -> list[ResourceLine]:
    """Custom resources with their component (nearest non-custom parent) and settings."""
    listed = list(resources)
    by_urn = {getattr(r, "urn", ""): r for r in listed}
    lines = [
        ResourceLine(_component_of(r, by_urn), r.type, r.name, settings_of(r.type, r.inputs))
        for r in listed
        if r.custom and not r.type.startswith("pulumi:providers:")
    ]
    return sorted(lines, key=lambda line: (line.component, line.type, line.name))


# --- Kubernetes manifests -------------------------------------------------------------------

_K8S_TYPE = re.compile(r"^kubernetes:(?P<group>[^/:]+)/(?P<version>[^:]+):(?P<kind>.+)$")


def manifest_of(resource: Recorded) -> dict[str, Any] | None:
    """The Kubernetes object a recorded `kubernetes:*` resource applies, or None."""
    match = _K8S_TYPE.match(resource.type)
    if not match or not resource.custom or resource.type.startswith("kubernetes:helm.sh/"):
        return None
    group, version, kind = match["group"], match["version"], match["kind"]
    body = plain(resource.inputs)
    api_version = version if group == "core" else f"{group}/{version}"
    metadata = dict(body.pop("metadata", None) or {})
    metadata.setdefault("name", resource.name)
    body.pop("apiVersion", None)
    body.pop("kind", None)
    return {"apiVersion": api_version, "kind": kind, "metadata": metadata, **body}


def write_manifests(resources: Iterable[Recorded], directory: Path) -> list[Path]:
    """Write each Kubernetes object as YAML, in registration order; Helm releases as values."""
    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for index, resource in enumerate(resources):
        if resource.type.startswith("kubernetes:helm.sh/") and resource.custom:
            inputs = plain(resource.inputs)
            doc: dict[str, Any] = {
                "chart": inputs.get("chart"),
                "version": inputs.get("version"),
                "repository": _get(inputs, "repositoryOpts.repo"),
                "namespace": inputs.get("namespace"),
                "values": inputs.get("values") or {},
            }
            path = directory / f"{index:03d}-helm-release-{resource.name}.yaml"
        else:
            manifest = manifest_of(resource)
            if manifest is None:
                continue
            doc = manifest
            path = directory / f"{index:03d}-{manifest['kind'].lower()}-{manifest['metadata']['name']}.yaml"
        path.write_text(yaml.safe_dump(doc, sort_keys=False, default_flow_style=False))
        written.append(path)
    return written
