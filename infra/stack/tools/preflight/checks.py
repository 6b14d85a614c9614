"""The checks: each takes the recorded resources of one offline run and yields violations."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from stack.tools.offline import RecordedResource, is_secret
from stack.tools.preflight.names import NAME_RULES, name_problem, physical_name
from stack.tools.preflight.rules import RULES, Violation
from stack.model.zones import EKS_DISALLOWED_ZONE_IDS

SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
SG_RULES = (
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
    "aws:ec2/securityGroupRule:SecurityGroupRule",
)
IAM_ROLE = "aws:iam/role:Role"
IAM_POLICY = "aws:iam/policy:Policy"
IAM_ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
SUBNET = "aws:ec2/subnet:Subnet"
EKS_CLUSTER = "aws:eks/cluster:Cluster"
RDS_INSTANCE = "aws:rds/instance:Instance"
ECR_REPOSITORY = "aws:ecr/repository:Repository"
RANDOM_TYPES = ("random:index/randomId:RandomId", "random:index/randomString:RandomString",
                "random:index/randomPet:RandomPet")

# EC2: IpRange and security group descriptions allow "&"; UserIdGroupPair and PrefixListId
# descriptions do not (EC2 API reference).
_EC2_DESCRIPTION = r"[a-zA-Z0-9 ._\-:/()#,@\[\]+=;{}!$*{amp}]*"
_EC2_WITH_AMP = re.compile(_EC2_DESCRIPTION.replace("{amp}", "&"))
_EC2_WITHOUT_AMP = re.compile(_EC2_DESCRIPTION.replace("{amp}", ""))
_IAM_DESCRIPTION = re.compile("[\u0009\u000a\u000d\u0020-\u007e\u00a1-\u00ff]*")
_IAM_POLICY_CHARS = re.compile("[\u0009\u000a\u000d\u0020-\u00ff]*")


def _violation(rule: str, resource: RecordedResource, value: Any, detail: str) -> Violation:
    return Violation(RULES[rule], resource.type, resource.name, value, detail)


def _plain(value: Any) -> Any:
    return value.get("value") if is_secret(value) else value


# --- descriptions -----------------------------------------------------------------------------


def _ec2_description(resource: RecordedResource, description: Any, *, amp: bool, where: str) -> Iterator[Violation]:
    if not isinstance(description, str):
        return
    if len(description) > 255:
        yield _violation("ec2-sg-description", resource, description, f"{where} has {len(description)} characters, allowed 255")
    pattern = _EC2_WITH_AMP if amp else _EC2_WITHOUT_AMP
    if not pattern.fullmatch(description):
        bad = sorted({c for c in description if not pattern.fullmatch(c)})
        yield _violation("ec2-sg-description", resource, description, f"{where} contains {''.join(bad)!r}, which EC2 refuses")


def check_descriptions(resources: Sequence[RecordedResource]) -> Iterator[Violation]:
    for r in resources:
        if r.type == SECURITY_GROUP:
            yield from _ec2_description(r, r.inputs.get("description"), amp=True, where="description")
            for direction in ("ingress", "egress"):
                for rule in r.inputs.get(direction) or []:
                    amp = not (rule.get("securityGroups") or rule.get("prefixListIds") or rule.get("self"))
                    yield from _ec2_description(r, rule.get("description"), amp=amp, where=f"{direction} rule description")
        elif r.type in SG_RULES:
            references = r.inputs.get("referencedSecurityGroupId") or r.inputs.get("prefixListId") \
                or r.inputs.get("sourceSecurityGroupId") or r.inputs.get("prefixListIds")
            yield from _ec2_description(r, r.inputs.get("description"), amp=not references, where="description")
        elif r.type in (IAM_ROLE, IAM_POLICY) and isinstance(r.inputs.get("description"), str):
            description = r.inputs["description"]
            if len(description) > 1000 or not _IAM_DESCRIPTION.fullmatch(description):
                yield _violation("iam-description", r, description,
                                 f"description of {len(description)} characters outside IAM's limit or character set")
        elif r.type == "aws:kms/key:Key" and isinstance(r.inputs.get("description"), str):
            if len(r.inputs["description"]) > 8192:
                yield _violation("kms-key-description", r, r.inputs["description"],
                                 f"description has {len(r.inputs['description'])} characters, allowed 8192")
        elif r.type == "aws:ec2/launchTemplate:LaunchTemplate" and isinstance(r.inputs.get("description"), str):
            if len(r.inputs["description"]) > 255:
                yield _violation("launch-template-description", r, r.inputs["description"],
                                 f"description has {len(r.inputs['description'])} characters, allowed 255")


# --- names --------------------------------------------------------------------------------------


def check_names(resources: Sequence[RecordedResource]) -> Iterator[Violation]:
    for r in resources:
        for rule in NAME_RULES.get(r.type, []):
            name = physical_name(r, rule)
            if name is None:
                continue
            problem = name_problem(name.value, rule)
            if problem:
                yield _violation(rule.rule, r, name.value, f"{rule.field} {name.describe()}: {problem}")


def _mentions_stack(name: str, stack: str) -> bool:
    return re.search(rf"(?<![A-Za-z0-9]){re.escape(stack)}(?![A-Za-z0-9])", name) is not None


def check_unique_names(resources: Sequence[RecordedResource], stack: str) -> Iterator[Violation]:
    """Explicit names where AWS keys on them: once per run, and carrying the stack name."""
    seen: dict[tuple[str, str, str], RecordedResource] = {}
    for r in resources:
        for rule in NAME_RULES.get(r.type, []):
            name = physical_name(r, rule)
            if name is None or name.how != "explicit" or rule.unique is None:
                continue
            key = (r.type, rule.field, name.value.lower() if rule.case_insensitive else name.value)
            if key in seen:
                other = seen[key]
                yield _violation("unique-name", r, name.value,
                                 f"{rule.field} also given to {other.type} {other.name!r}; AWS keeps it unique per {rule.unique}")
            else:
                seen[key] = r
            if not _mentions_stack(name.value, stack):
                yield _violation("stack-qualified-name", r, name.value,
                                 f"{rule.field} is unique per {rule.unique} but does not name stack {stack!r}, "
                                 "so another stack of this program in the account collides with it")


# --- tags ------------------------------------------------------------------------------------------


def _tag_sets(resource: RecordedResource) -> Iterator[tuple[str, Mapping[str, Any]]]:
    tags = resource.inputs.get("tags")
    if isinstance(tags, dict):
        yield "tags", tags
    for index, spec in enumerate(resource.inputs.get("tagSpecifications") or []):
        if isinstance(spec, dict) and isinstance(spec.get("tags"), dict):
            yield f"tagSpecifications[{index}].tags", spec["tags"]


def check_tags(resources: Sequence[RecordedResource]) -> Iterator[Violation]:
    for r in resources:
        if not r.type.startswith("aws:"):
            continue
        for where, tags in _tag_sets(r):
            user = {k: v for k, v in tags.items() if not str(k).lower().startswith("aws:")}
            if len(user) > 50:
                yield _violation("tag-count", r, len(user), f"{where} has too many tags (allowed 50)")
            for key, value in tags.items():
                key, value = str(key), "" if value is None else str(_plain(value))
                if not 1 <= len(key) <= 128:
                    yield _violation("tag-key-length", r, key, f"{where} key of {len(key)} characters (allowed 1-128)")
                if len(value) > 256:
                    yield _violation("tag-value-length", r, value, f"{where}[{key!r}] value of {len(value)} characters (allowed 256)")
                if key.lower().startswith("aws:") or value.lower().startswith("aws:"):
                    yield _violation("tag-reserved-prefix", r, f"{key}={value}", f"{where} uses the reserved 'aws:' prefix")


# --- IAM policy documents -------------------------------------------------------------------------


def policy_size(document: str) -> int:
    """Characters IAM counts: the document without whitespace outside its strings."""
    try:
        parsed = json.loads(document)
    except json.JSONDecodeError:
        return len(re.sub(r"\s", "", document))
    return len(json.dumps(parsed, separators=(",", ":"), ensure_ascii=False))


def _document(value: Any) -> str | None:
    value = _plain(value)
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return None


def check_policies(resources: Sequence[RecordedResource]) -> Iterator[Violation]:
    inline: dict[str, list[tuple[RecordedResource, str]]] = defaultdict(list)
    roles = {r.urn: r for r in resources if r.type == IAM_ROLE}
    for r in resources:
        documents: list[tuple[str, str]] = []
        if r.type == IAM_POLICY and (doc := _document(r.inputs.get("policy"))) is not None:
            documents.append(("policy", doc))
            if (size := policy_size(doc)) > 6144:
                yield _violation("iam-managed-policy-size", r, size, "policy document size (characters, whitespace not counted) above 6,144")
        if r.type == IAM_ROLE:
            if (doc := _document(r.inputs.get("assumeRolePolicy"))) is not None:
                documents.append(("assumeRolePolicy", doc))
                if (size := policy_size(doc)) > 2048:
                    yield _violation("iam-trust-policy-size", r, size, "trust policy size above the default quota of 2,048")
            for policy in r.inputs.get("inlinePolicies") or []:
                if (doc := _document(policy.get("policy"))) is not None:
                    documents.append(("inlinePolicies", doc))
                    inline[r.name].append((r, doc))
        if r.type == IAM_ROLE_POLICY and (doc := _document(r.inputs.get("policy"))) is not None:
            documents.append(("policy", doc))
            # `role` is the role's name: explicit, or (offline) the mock's "<logical>-placeholder".
            role = r.inputs.get("role")
            owner = next(
                (x for x in roles.values() if role in (x.inputs.get("name"), f"{x.name}-placeholder")), None
            )
            inline[owner.name if owner else str(role)].append((owner or r, doc))
        for field, doc in documents:
            if not _IAM_POLICY_CHARS.fullmatch(doc):
                bad = sorted({c for c in doc if not _IAM_POLICY_CHARS.fullmatch(c)})
                yield _violation("iam-policy-charset", r, "".join(bad), f"{field} contains characters IAM refuses")
    for role_name, entries in inline.items():
        total = sum(policy_size(doc) for _, doc in entries)
        if total > 10240:
            yield _violation("iam-inline-policy-size", entries[0][0], total,
                             f"inline policies of role {role_name!r} together above 10,240")


# --- placement -----------------------------------------------------------------------------------


def check_zones(resources: Sequence[RecordedResource], zone_ids_by_name: Mapping[str, str]) -> Iterator[Violation]:
    """Cluster subnets must not be in the zone IDs EKS refuses (recorded subnets only)."""
    subnets = {f"{s.name}-placeholder-id": s for s in resources if s.type == SUBNET}
    for cluster in (r for r in resources if r.type == EKS_CLUSTER):
        for subnet_id in (cluster.inputs.get("vpcConfig") or {}).get("subnetIds") or []:
            subnet = subnets.get(subnet_id)
            if subnet is None:
                continue
            zone_id = subnet.inputs.get("availabilityZoneId") or zone_ids_by_name.get(
                str(subnet.inputs.get("availabilityZone")), ""
            )
            if zone_id in EKS_DISALLOWED_ZONE_IDS:
                yield _violation("eks-zone-id", cluster, zone_id,
                                 f"cluster subnet {subnet.name!r} is in a zone EKS refuses for clusters")


# --- deletion ------------------------------------------------------------------------------------


def _random_values(resource: RecordedResource) -> list[str]:
    return [str(resource.outputs[k]) for k in ("hex", "result", "b64Url", "id") if resource.outputs.get(k)]


def check_deletion(resources: Sequence[RecordedResource]) -> Iterator[Violation]:
    by_urn = {r.urn: r for r in resources}
    for r in resources:
        if r.type == RDS_INSTANCE and r.inputs.get("skipFinalSnapshot") is False:
            identifier = r.inputs.get("finalSnapshotIdentifier")
            randoms = [by_urn[u] for u in r.dependencies if u in by_urn and by_urn[u].type in RANDOM_TYPES]
            generated = [d for d in randoms if d.parent == r.parent and any(v in str(identifier) for v in _random_values(d))]
            if not generated:
                yield _violation("rds-final-snapshot-per-deletion", r, identifier,
                                 "finalSnapshotIdentifier is fixed: a second deletion (after a replacement or a "
                                 "new deploy of the stack) finds the first one's snapshot")
        if r.type == ECR_REPOSITORY and not r.inputs.get("forceDelete") and not r.retain_on_delete:
            yield _violation("ecr-destroy-with-images", r, r.inputs.get("forceDelete", False),
                             "neither forceDelete nor retainOnDelete: destroy fails once an image is pushed")
