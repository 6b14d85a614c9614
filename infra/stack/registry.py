"""The ECR repository of the service image."""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws


def lifecycle_policy(keep_images: int = 30, untagged_days: int = 7) -> str:
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
                {
                    "rulePriority": 2,
                    "description": f"Keep the newest {keep_images} images",
                    "selection": {
                        "tagStatus": "any",
                        "countType": "imageCountMoreThan",
                        "countNumber": keep_images,
                    },
                    "action": {"type": "expire"},
                },
            ]
        }
    )


class Registry(pulumi.ComponentResource):
    repository_url: pulumi.Output[str]

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
        self.register_outputs({"repositoryUrl": self.repository_url})
