"""The JSON Schema and the README's config reference stay in sync with the config model."""

from __future__ import annotations

import json

import jsonschema
import pytest
import yaml

from stack.tools.offline import stack_file
from stack.config.schema import README, SCHEMA_FILE, readme_with_reference, stack_file_schema
from tests.infra.stack_files import STACKS


def test_schema_file_is_generated_from_the_model() -> None:
    assert json.loads(SCHEMA_FILE.read_text()) == stack_file_schema(), (
        "schema/stack-config.schema.json is stale: run `uv run python -m stack.config.schema`"
    )


def test_readme_config_reference_is_generated_from_the_model() -> None:
    readme = README.read_text()
    assert readme == readme_with_reference(readme), (
        "the README's config reference is stale: run `uv run python -m stack.config.schema`"
    )
    for key in ("django-eks:nodePools.<name>.instanceType", "django-eks:web.threads", "django-eks:worker.concurrency"):
        assert f"`{key}`" in readme


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
