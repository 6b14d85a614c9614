"""The ECR repository of the service image, and the pull-through cache of public images."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from stack.config.model import StackConfig


def lifecycle_policy(untagged_days: int = 7) -> str:
    """Expire only untagged images.

    A stack runs its image by digest, resolved from a tag; the repository's tags are immutable,
    so a tagged image keeps its tag for good and never matches this rule. Untagged images are
    only ever layers of nothing a stack runs: an interrupted push, or a multi-arch image's
    per-platform manifests, which ECR lists untagged but keeps while their index is referenced
    (ECR lifecycle policies never expire images a manifest list still references). A count
    rule over tagged images ("keep the newest 30") could expire the image a rarely deployed
    stack still runs, or the one a rollback needs, so there is none: old commit tags are
    removed deliberately (`aws ecr batch-delete-image`).
    """
    return json.dumps(
        {
            "rules": [
                {
                    "rulePriority": 1,
                    "description": f"Expire untagged images after {untagged_days} days",
                    "selection": {
                        "tagStatus": "untagged",
                        "countType": "sinceImagePushed",
                        "countUnit": "days",
                        "countNumber": untagged_days,
                    },
                    "action": {"type": "expire"},
                },
            ]
        }
    )


ECR_PUBLIC = "public.ecr.aws"
"""The upstream of the pull-through cache: Amazon ECR Public, which needs no credentials."""

_PREFIX_MAX = 30
"""CreatePullThroughCacheRule ecrRepositoryPrefix: 2 to 30 characters."""


def pull_through_prefix(stack: str) -> str:
    """The stack's pull-through cache prefix: `<stack>-ecr-public`.

    A prefix is unique per account and region (one rule each), so two stacks sharing an
    account cannot share a fixed one. Lowercase letters, digits and `-` only; a stack name
    too long for the 30-character limit is shortened with a hash that keeps it unique.
    """
    # One separator between alphanumeric runs, as the prefix pattern demands.
    base = re.sub(r"[^a-z0-9]+", "-", stack.lower()).strip("-") or "stack"
    prefix = f"{base}-ecr-public"
    if len(prefix) > _PREFIX_MAX:
        digest = hashlib.sha256(stack.encode()).hexdigest()[:6]
        short = base[: _PREFIX_MAX - len("-ecr-public") - 7].rstrip("-")
        prefix = f"{short}-{digest}-ecr-public"
    return prefix


def registry_host(repository_url: str) -> str:
    """`<account>.dkr.ecr.<region>.amazonaws.com` of a repository URL."""
    return repository_url.split("/", 1)[0]


class Registry(pulumi.ComponentResource):
    repository_url: pulumi.Output[str]
    repository_name: pulumi.Output[str]
    registry_id: pulumi.Output[str]
    host: pulumi.Output[str]
    """The account's private registry: `<account>.dkr.ecr.<region>.amazonaws.com`."""
    cache_prefix: str
    """Images of ECR Public are pulled as `<host>/<cache_prefix>/<upstream repository>`."""

    def __init__(
        self,
        name: str,
        tags: dict[str, str],
        cache_prefix: str,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("django-eks:platform:Registry", name, None, opts)
        repository = aws.ecr.Repository(
            f"{name}",
            # Immutable tags: a tag names one image forever, so the migration Job keyed on the
            # image reference runs once per build.
            image_tag_mutability="IMMUTABLE",
            image_scanning_configuration={"scan_on_push": True},
            encryption_configurations=[{"encryption_type": "AES256"}],
            # Images are build outputs, rebuilt from any commit: `pulumi destroy` deletes them
            # with the repository instead of failing with RepositoryNotEmptyException.
            force_delete=True,
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        aws.ecr.LifecyclePolicy(
            f"{name}-lifecycle",
            repository=repository.name,
            policy=lifecycle_policy(),
            opts=pulumi.ResourceOptions(parent=self),
        )
        # Public images the pods run (the web pod's nginx) come through the account's own
        # registry: ECR Public has no anonymous pull limits that would hit a node pulling as
        # anonymous, as Docker Hub's do, and the nodes pull with their role like the app image.
        # The first pull of an image creates its repository under the prefix (the node role
        # may, only there: cluster.py). An explicit, account-unique name: delete first.
        aws.ecr.PullThroughCacheRule(
            f"{name}-ecr-public",
            ecr_repository_prefix=cache_prefix,
            upstream_registry_url=ECR_PUBLIC,
            opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True),
        )
        self.repository_url = repository.repository_url
        self.repository_name = repository.name
        self.registry_id = repository.registry_id
        # (A mock engine that answers no repositoryUrl gives None; the real engine never does.)
        self.host = repository.repository_url.apply(lambda url: registry_host(url or ""))
        self.cache_prefix = cache_prefix
        self.register_outputs({"repositoryUrl": self.repository_url})


# The image its pods run: pinned by digest (`repo@sha256:...`), resolved from the registry at
# deploy time from the configured tag, so that whatever later happens to a tag, a running pod's
# image cannot change under it, and a restarted pod runs the very image its Deployment was
# rolled out with.

_ECR_URL = re.compile(
    r"(?P<registry>\d{12})\.dkr\.ecr\.(?P<region>[a-z]{2}(-gov)?-[a-z]+-\d)\.amazonaws\.com(\.cn)?"
    r"/(?P<name>[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*)"
)


class ImageNotFoundError(LookupError):
    """The configured tag is not in the registry."""


@dataclass(frozen=True)
class EcrRepository:
    registry_id: str
    region: str
    name: str

    @property
    def url(self) -> str:
        return f"{self.registry_id}.dkr.ecr.{self.region}.amazonaws.com/{self.name}"


def parse_ecr_url(url: str) -> EcrRepository:
    """The parts of an ECR repository URL; ValueError for anything else."""
    match = _ECR_URL.fullmatch(url)
    if not match:
        raise ValueError(
            f"{url!r} is not an ECR repository URL "
            "(<12-digit account>.dkr.ecr.<region>.amazonaws.com/<name>); the stack resolves "
            "its image's digest from ECR"
        )
    return EcrRepository(match["registry"], match["region"], match["name"])


def digest_for_tag(images: Iterable[tuple[str | None, str]], tag: str, repository: str) -> str:
    """The digest `tag` names among a repository's images, given as (tag, digest) pairs (ECR
    ListImages lists a tagged image once per tag, an untagged one with no tag)."""
    for image_tag, digest in images:
        if image_tag == tag:
            return digest
    raise ImageNotFoundError(
        f"image tag {tag!r} is not in the ECR repository {repository}: build and push it "
        "first (docs/deploy.md, Deploy for real), or set image.tag to a tag the repository has"
    )


def pinned_reference(repository_url: str, digest: str) -> str:
    """`repo@sha256:...`: what the pods run, immune to any later change of a tag."""
    if not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
        raise ValueError(f"{digest!r} is not an image digest (sha256:<64 hex digits>)")
    return f"{repository_url}@{digest}"


def _tag_and_digest(image: Any) -> tuple[str | None, str]:
    # The invoke's typed result, or a plain dict where the SDK leaves nested values untyped.
    if isinstance(image, dict):
        tag = image.get("image_tag", image.get("imageTag"))
        return tag, str(image.get("image_digest", image.get("imageDigest")))
    return image.image_tag, str(image.image_digest)


def pinned_image(config: StackConfig, registry: Registry) -> pulumi.Output[str]:
    """`repo@sha256:...` of the configured digest as given, or of the configured tag, resolved
    from ECR now (ListImages).

    Listing rather than `aws.ecr.get_image`: a missing tag then fails with an error that names
    the tag, the repository and the fix, not the provider's ImageNotFoundException. A preview
    (which may run before the deploy workflow has pushed the tag) warns and shows the tag.
    """
    if config.image.repository:
        external = parse_ecr_url(config.image.repository)
        url: pulumi.Input[str] = external.url
        name: pulumi.Input[str] = external.name
        registry_id: pulumi.Input[str] = external.registry_id
        region = external.region
    else:
        url, name, registry_id = registry.repository_url, registry.repository_name, registry.registry_id
        region = config.region
    digest, tag = config.image.digest, config.image.tag
    if digest is not None:
        return pulumi.Output.from_input(url).apply(lambda repository: pinned_reference(repository, digest))
    if tag is None:
        raise ValueError("image.tag or image.digest must be set to deploy the app")
    listed = aws.ecr.get_images_output(repository_name=name, registry_id=registry_id, region=region)

    def pin(values: list[Any]) -> str:
        repository, image_ids = str(values[0]), values[1] or []
        pairs = [_tag_and_digest(i) for i in image_ids]
        try:
            return pinned_reference(repository, digest_for_tag(pairs, tag, repository))
        except ImageNotFoundError as e:
            if not pulumi.runtime.is_dry_run():
                raise
            pulumi.log.warn(f"{e}; this preview shows the tag, `pulumi up` needs the image")
            return f"{repository}:{tag}"

    return pulumi.Output.all(url, listed.image_ids).apply(pin)
