"""`python -m stack.release`: what the workflows need to know about the stacks, from the files.

    stacks                 every stack with a Pulumi.<stack>.yaml, as a JSON list (the
                           pull-request preview matrix)
    image --stack NAME     the stack's image facts as GitHub step outputs (key=value lines):
                             platforms  docker buildx --platform value, from the node pools
                             region     the stack's region, where its ECR repository lives
                             targets    the URNs `pulumi up --target` needs to create the
                                        registry alone (a brand-new stack's first step)

Reads only the stack files and the offline run of the program (no AWS, no Pulumi service).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from stack.config import StackConfigError
from stack.offline import REPO_ROOT, OfflineRun, run_stack, stack_names
from stack.plan.report import config_from_stack_file
from stack.release.image import image_platforms

REGISTRY_TYPE = "django-eks:platform:Registry"


def real_urn(urn: str) -> str:
    """The URN the engine gives a resource: the mock monitor prefixes the root Stack's type to
    its direct children's type chain, the engine does not."""
    return urn.replace("::pulumi:pulumi:Stack$", "::", 1)


def registry_targets(run: OfflineRun) -> list[str]:
    """The Registry component and everything under it, by URN (the URNs a real stack of the
    same name has: they depend only on project, stack, types and names)."""
    components = {r.urn for r in run.resources if r.type == REGISTRY_TYPE}
    children = [r.urn for r in run.resources if r.parent in components]
    return [real_urn(urn) for urn in sorted(components) + sorted(children)]


def image_facts(stack: str, root: Path = REPO_ROOT) -> dict[str, str]:
    config = config_from_stack_file(stack, root)
    run = run_stack(stack, root)
    return {
        "platforms": ",".join(image_platforms(config)),
        "region": config.region,
        "targets": " ".join(registry_targets(run)),
    }


def main(argv: Sequence[str] | None = None, root: Path = REPO_ROOT) -> int:
    parser = argparse.ArgumentParser(prog="python -m stack.release", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("stacks", help="every stack file's stack, as a JSON list")
    image = commands.add_parser("image", help="platforms, region and registry targets of a stack")
    image.add_argument("--stack", required=True)
    args = parser.parse_args(argv)

    if args.command == "stacks":
        print(json.dumps(stack_names(root)))
        return 0
    if args.stack not in stack_names(root):
        print(
            f"no stack file Pulumi.{args.stack}.yaml; stacks: {', '.join(stack_names(root))}",
            file=sys.stderr,
        )
        return 2
    try:
        facts = image_facts(args.stack, root)
    except StackConfigError as e:
        print(f"Pulumi.{args.stack}.yaml: {e}", file=sys.stderr)
        return 1
    for key, value in facts.items():
        print(f"{key}={value}")
    return 0
