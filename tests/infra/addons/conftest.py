"""The prod stack's config for the add-on tests."""

from __future__ import annotations

import pytest

from stack.config.model import StackConfig
from stack.config.rules import parse_stack_config
from tests.infra.support.stack_files import project_config


@pytest.fixture
def prod_config() -> StackConfig:
    return parse_stack_config(project_config("prod"))
