"""The service image of a stack: the platforms to build, and those its builder emulates.

The digest its pods run is resolved by the program (stack.platform.registry.pinned_image).
"""

from __future__ import annotations

from collections.abc import Iterable

from stack.config.catalog import instance_type
from stack.config.model import StackConfig
from stack.model.pod_requests import workload_shapes

# What `docker buildx --platform` calls the architectures of the EC2 catalog.
DOCKER_ARCHITECTURE = {"x86_64": "amd64", "arm64": "arm64"}

def image_platforms(config: StackConfig) -> list[str]:
    """`linux/<arch>` for every node pool that runs the image (web, workers, migrations).

    Graviton pools need arm64, the others amd64; mixed pools need a multi-arch image.
    """
    pools = {shape.node_pool for shape in workload_shapes(config)}
    architectures = {instance_type(config.node_pools[p].instance_type).architecture for p in pools}
    return sorted(f"linux/{DOCKER_ARCHITECTURE[a]}" for a in architectures)


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
