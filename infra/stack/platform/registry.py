"""The ECR repository of the service image, and the pull-through cache of public images."""

from __future__ import annotations

import hashlib
import json
import re

import pulumi
import pulumi_aws as aws


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
