"""The service image of a stack: the platforms to build, and the digest its pods run.

Pods reference the image by digest (`repo@sha256:...`), resolved from the registry at deploy
time from the configured tag: whatever later happens to a tag, a running pod's image cannot
change under it, and a restarted pod runs the very image its Deployment was rolled out with.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from stack.catalog import instance_type
from stack.config import StackConfig

# What `docker buildx --platform` calls the architectures of the EC2 catalog.
DOCKER_ARCHITECTURE = {"x86_64": "amd64", "arm64": "arm64"}

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


def image_platforms(config: StackConfig) -> list[str]:
    """`linux/<arch>` for every node pool that runs the image (web, workers, migrations).

    Graviton pools need arm64, the others amd64; mixed pools need a multi-arch image.
    """
    pools = {config.web.node_pool, config.worker.node_pool}
    architectures = {instance_type(config.node_pools[p].instance_type).architecture for p in pools}
    return sorted(f"linux/{DOCKER_ARCHITECTURE[a]}" for a in architectures)


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


# What GitHub's runners report as RUNNER_ARCH, as `docker buildx --platform` architectures.
RUNNER_ARCHITECTURE = {"X64": "amd64", "ARM64": "arm64", "X86": "386", "ARM": "arm"}


def emulated_architectures(platforms: Iterable[str], runner_arch: str) -> list[str]:
    """The architectures of `platforms` the runner cannot run natively: buildx runs a build
    for them under QEMU, which must be registered first (binfmt_misc), or every `RUN` of the
    Dockerfile fails with "exec format error"."""
    if runner_arch not in RUNNER_ARCHITECTURE:
        raise ValueError(f"unknown runner architecture {runner_arch!r} (RUNNER_ARCH: {', '.join(RUNNER_ARCHITECTURE)})")
    native = RUNNER_ARCHITECTURE[runner_arch]
    return sorted({p.removeprefix("linux/") for p in platforms} - {native})
