"""A deploy's first step: whether the stack needs its platform (and registry) before the image.

`pulumi up` deploys an image that must already be in the stack's ECR repository, and that
repository is part of the stack. A targeted `pulumi up --target <registry>` cannot create it on
a new stack: the engine includes providers in every targeted update, and the Kubernetes
provider depends on the cluster, its access policies, node groups and add-ons, none of them
targeted (error 2013, "Resource ... depends on ... which was was not specified in --target
list": pulumi/pulumi pkg/resource/deploy/step_generator.go, validateSteps). So a stack whose
state has no registry gets an untargeted `pulumi up` without `image.tag` first: the program
then registers the platform only, which on such a stack deletes nothing (no app exists before
its first image). A stack whose state has the registry skips that step: it builds, pushes and
deploys.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from stack.config.model import PROJECT
from stack.tools.offline import REPO_ROOT, OfflineRun, pulumi_config_of, run_program

REPOSITORY_TYPE = "aws:ecr/repository:Repository"


class BootstrapRefused(RuntimeError):
    """An untargeted platform-only `pulumi up` would delete resources of the stack."""


def real_urn(urn: str) -> str:
    """The URN the engine gives a resource: the mock monitor prefixes the root Stack's type to
    its direct children's type chain, the engine does not."""
    return urn.replace("::pulumi:pulumi:Stack$", "::", 1)


def urn_type(urn: str) -> str:
    """The resource's own type: the last entry of the URN's type chain."""
    return urn.split("::")[2].split("$")[-1]


def engine_managed(urn: str) -> bool:
    """The root stack and providers: the engine registers, updates and drops them itself."""
    kind = urn_type(urn)
    return kind == "pulumi:pulumi:Stack" or kind.startswith("pulumi:providers:")


def state_urns(export: Mapping[str, Any]) -> set[str]:
    """The URNs of `pulumi stack export` (a new stack's export has no resources)."""
    resources = (export.get("deployment") or {}).get("resources") or []
    return {str(r["urn"]) for r in resources}


def platform_only_config(pulumi_config: Mapping[str, str]) -> dict[str, str]:
    """The stack's config without `image.tag`, as `pulumi config rm --path image.tag` leaves it."""
    config = dict(pulumi_config)
    key = f"{PROJECT}:image"
    if key in config:
        image = {k: v for k, v in json.loads(config[key]).items() if k != "tag"}
        config[key] = json.dumps(image)
    return config


def platform_run(stack: str, root: Path = REPO_ROOT) -> OfflineRun:
    """The program as the platform-only step runs it: the stack file's config, no image tag."""
    return run_program(platform_only_config(pulumi_config_of(stack, root)), stack=stack, root=root, registry_tags=[])


def needs_platform_first(platform: OfflineRun, state: Iterable[str]) -> bool:
    """Whether the stack's state lacks its ECR repository, so the deploy must run the
    platform-only `pulumi up` before it can push the image.

    Refuses (BootstrapRefused) when the state lacks the repository but holds resources the
    platform-only program does not register: an untargeted update would delete them.
    """
    held = set(state)
    repository = {real_urn(r.urn) for r in platform.of_type(REPOSITORY_TYPE)}
    if repository and repository <= held:
        return False
    registered = {real_urn(r.urn) for r in platform.resources}
    doomed = sorted(u for u in held if u not in registered and not engine_managed(u))
    if doomed:
        raise BootstrapRefused(
            f"the stack has no ECR repository ({', '.join(sorted(repository))}) but holds "
            f"{len(doomed)} resource(s) a deploy without image.tag would delete, e.g. {doomed[0]}; "
            "nothing was deployed: compare the state with the program (pulumi preview) and "
            "repair it by hand (docs/deploy.md, Deploy for real)"
        )
    return True
