"""The ECR repository of the service image."""

from __future__ import annotations

import json

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


class Registry(pulumi.ComponentResource):
    repository_url: pulumi.Output[str]
    repository_name: pulumi.Output[str]
    registry_id: pulumi.Output[str]

    def __init__(
        self, name: str, tags: dict[str, str], opts: pulumi.ResourceOptions | None = None
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
        self.repository_url = repository.repository_url
        self.repository_name = repository.name
        self.registry_id = repository.registry_id
        self.register_outputs({"repositoryUrl": self.repository_url})
