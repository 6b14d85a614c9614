"""`python -m stack.tools.release`: what the workflows need to know about the stacks, from the files.

    stacks                     every stack with a Pulumi.<stack>.yaml, as a JSON list (the
                               pull-request preview matrix)
    runner --stack NAME        runner=<JSON>: the deploy job's `runs-on` labels (deploy.runner)
    image --stack NAME         the stack's image facts as GitHub step outputs (key=value lines):
                                 platforms  docker buildx --platform value, from the node pools
                                 region     the stack's region, where its ECR repository lives
                                 emulated   the platforms' architectures this runner cannot run
                                            natively (RUNNER_ARCH, or --runner-arch): QEMU's
                                            `platforms`; empty when the build needs no emulation
    bootstrap --stack NAME --state FILE
                               platform_first=true when the stack's state (`pulumi stack export`
                               in FILE) has no ECR repository yet: the deploy then runs an
                               untargeted `pulumi up` without image.tag first (stack.tools.release.bootstrap)

Reads only the stack files and the offline run of the program (no AWS, no Pulumi service).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from collections.abc import Sequence
from pathlib import Path

from stack.config.rules import StackConfigError
from stack.config.loader import config_from_stack_file, stack_names
from stack.tools.offline import REPO_ROOT
from stack.tools.release.bootstrap import BootstrapRefused, needs_platform_first, platform_run, state_urns
from stack.tools.release.image import emulated_architectures, image_platforms

_MACHINE_ARCH = {"x86_64": "X64", "amd64": "X64", "aarch64": "ARM64", "arm64": "ARM64"}


def host_runner_arch() -> str:
    """RUNNER_ARCH as GitHub's runner sets it, or this machine's, named the same way."""
    return os.environ.get("RUNNER_ARCH") or _MACHINE_ARCH.get(platform.machine().lower(), platform.machine())


def image_facts(stack: str, root: Path = REPO_ROOT, runner_arch: str | None = None) -> dict[str, str]:
    config = config_from_stack_file(stack, root)
    platforms = image_platforms(config)
    return {
        "platforms": ",".join(platforms),
        "region": config.region,
        "emulated": ",".join(emulated_architectures(platforms, runner_arch or host_runner_arch())),
    }


def main(argv: Sequence[str] | None = None, root: Path = REPO_ROOT) -> int:
    parser = argparse.ArgumentParser(prog="python -m stack.tools.release", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("stacks", help="every stack file's stack, as a JSON list")
    runner = commands.add_parser("runner", help="the deploy job's runs-on labels, as JSON")
    runner.add_argument("--stack", required=True)
    image = commands.add_parser("image", help="platforms, region and emulated architectures of a stack")
    image.add_argument("--stack", required=True)
    image.add_argument("--runner-arch", help="X64, ARM64, ... (default: RUNNER_ARCH, or this machine's)")
    bootstrap = commands.add_parser("bootstrap", help="whether the deploy must create the platform first")
    bootstrap.add_argument("--stack", required=True)
    bootstrap.add_argument("--state", required=True, type=Path, help="`pulumi stack export` of the stack")
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
        if args.command == "runner":
            labels = config_from_stack_file(args.stack, root).deploy.runner
            print(f"runner={json.dumps(labels)}")
        elif args.command == "image":
            for key, value in image_facts(args.stack, root, args.runner_arch).items():
                print(f"{key}={value}")
        else:
            state = state_urns(json.loads(args.state.read_text()))
            first = needs_platform_first(platform_run(args.stack, root), state)
            print(f"platform_first={'true' if first else 'false'}")
    except StackConfigError as e:
        print(f"Pulumi.{args.stack}.yaml: {e}", file=sys.stderr)
        return 1
    except (BootstrapRefused, ValueError) as e:
        print(f"{args.stack}: {e}", file=sys.stderr)
        return 1
    return 0
