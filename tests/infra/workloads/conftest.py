"""Stack configs from the repository's stack files, and a clean Pulumi mock runtime per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml

from stack.config import PROJECT, StackConfig, parse_stack_config

ROOT = Path(__file__).resolve().parents[3]
STACK_FILES = sorted(ROOT.glob("Pulumi.*.yaml"))


def raw_stack_config(path: Path) -> dict[str, Any]:
    """A stack file's config as `parse_stack_config` expects it: namespace stripped."""
    document = yaml.safe_load(path.read_text()) or {}
    raw: dict[str, Any] = {}
    for key, value in (document.get("config") or {}).items():
        namespace, _, name = key.partition(":")
        if namespace == PROJECT:
            raw[name] = value
        elif key == "aws:region":
            raw["region"] = value
    return raw


def stack_name(path: Path) -> str:
    return path.name.removeprefix("Pulumi.").removesuffix(".yaml")


@pytest.fixture(params=STACK_FILES, ids=[stack_name(p) for p in STACK_FILES])
def stack_config(request: pytest.FixtureRequest) -> StackConfig:
    return parse_stack_config(raw_stack_config(request.param))


@pytest.fixture
def prod_config() -> StackConfig:
    return parse_stack_config(raw_stack_config(ROOT / "Pulumi.prod.yaml"))


@pytest.fixture
def clean_pulumi_runtime() -> Iterator[None]:
    """Each mocks test starts from a fresh root stack, so resources of one never leak into
    the next."""
    pulumi.runtime.settings.set_root_resource(None)  # type: ignore[arg-type]
    yield
    pulumi.runtime.settings.set_root_resource(None)  # type: ignore[arg-type]
