"""The repository's stack files, and offline runs of the program with them."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

from stack.config import loader
from stack.config.loader import decoded_stack_file, stack_names
from stack.tools.offline import OfflineRun, RecordedResource, run_program, run_stack

STACKS = stack_names()
APP_STACKS = [s for s in STACKS if "django-eks:app" in decoded_stack_file(s)]
"""The stacks of an app of their own (an `app` section): the example project's."""
DEMO_STACKS = [s for s in STACKS if s not in APP_STACKS]
"""The stacks that deploy the demo service."""


def stack_raw_config(stack: str) -> dict[str, Any]:
    """A stack file's config decoded into plain values, keyed as in the YAML file."""
    return decoded_stack_file(stack)


def encode(raw: dict[str, Any]) -> dict[str, str]:
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in raw.items()}


def project_config(stack: str) -> dict[str, Any]:
    """The stack's config as `parse_stack_config` takes it: namespace stripped, and region."""
    return loader.project_config(loader.pulumi_config_of(stack))


_runs: dict[str, OfflineRun] = {}


def stack_run(stack: str) -> OfflineRun:
    """The program run offline with Pulumi.<stack>.yaml (one run per stack per session)."""
    if stack not in _runs:
        _runs[stack] = run_stack(stack)
    return _runs[stack]


def run_edited(
    edit: Callable[[dict[str, Any]], None],
    base: str = "dev",
    recorded: list[RecordedResource] | None = None,
    zones: list[tuple[str, str]] | None = None,
    registry_tags: list[str] | None = None,
) -> OfflineRun:
    """Run the program with a stack's config changed by `edit(raw_config)`.

    `zones` replaces the mock account's (zone name, zone ID) pairs; `registry_tags` the image
    tags the registry holds (by default the one the config names).
    """
    raw = copy.deepcopy(stack_raw_config(base))
    edit(raw)
    return run_program(
        encode(raw), stack=f"{base}-edited", recorded=recorded, zones=zones, registry_tags=registry_tags
    )
