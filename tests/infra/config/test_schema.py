"""The JSON Schema and docs/config-reference.md stay in sync with the config model."""

from __future__ import annotations

import json

import jsonschema
import pytest
import yaml

from stack.tools.offline import stack_file
from stack.config.schema import (
    COMMAND,
    REFERENCE_FILE,
    SCHEMA_FILE,
    config_reference_document,
    stack_file_schema,
)
from tests.infra.support.stack_files import STACKS


def test_schema_file_is_generated_from_the_model() -> None:
    assert json.loads(SCHEMA_FILE.read_text()) == stack_file_schema(), (
        f"schema/stack-config.schema.json is stale: run `uv run {COMMAND}`"
    )


def test_config_reference_is_generated_from_the_model() -> None:
    reference = REFERENCE_FILE.read_text()
    assert reference == config_reference_document(), (
        f"docs/config-reference.md is stale: run `uv run {COMMAND}`"
    )
    assert reference.startswith(f"<!-- Generated from the config model by `{COMMAND}`")
    for key in ("django-eks:nodePools.<name>.instanceType", "django-eks:web.threads", "django-eks:worker.concurrency"):
        assert f"`{key}`" in reference


@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_file_validates_against_the_schema(stack: str) -> None:
    document = yaml.safe_load(stack_file(stack).read_text())
    jsonschema.validate(document, stack_file_schema())


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("django-eks:webServer", {}),
        ("django-eks:web", {"threads": "eight"}),
        ("django-eks:nodePools", {"default": {"instanceType": "m4.large", "spot": True}}),
        ("django-eks:network", {"natGateways": "none"}),
    ],
)
def test_schema_rejects_what_the_model_rejects(key: str, value: object) -> None:
    document = yaml.safe_load(stack_file("dev").read_text())
    document["config"][key] = value
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, stack_file_schema())
