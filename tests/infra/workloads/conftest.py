"""Stack configs from the repository's stack files, and a clean Pulumi mock runtime per test."""

from __future__ import annotations

from collections.abc import Iterator

import pulumi
import pytest

from stack.config.model import StackConfig
from stack.config.rules import parse_stack_config
from tests.infra.support.stack_files import APP_STACKS, DEMO_STACKS, project_config
from tests.infra.support.workload_mocks import RecordingMonitor, recording_monitor


@pytest.fixture(params=DEMO_STACKS)
def stack_config(request: pytest.FixtureRequest) -> StackConfig:
    """Each stack file of the demo service (the workloads' tests of the demo's launcher)."""
    return parse_stack_config(project_config(request.param))


@pytest.fixture(params=APP_STACKS)
def app_stack_config(request: pytest.FixtureRequest) -> StackConfig:
    """Each stack file with an app of its own (`app` section)."""
    return parse_stack_config(project_config(request.param))


@pytest.fixture
def prod_config() -> StackConfig:
    return parse_stack_config(project_config("prod"))


@pytest.fixture
def clean_pulumi_runtime() -> Iterator[None]:
    """Each mocks test starts from a fresh root stack, so resources of one never leak into
    the next."""
    pulumi.runtime.settings.set_root_resource(None)  # type: ignore[arg-type]
    yield
    pulumi.runtime.settings.set_root_resource(None)  # type: ignore[arg-type]


@pytest.fixture
def monitor(clean_pulumi_runtime: None) -> RecordingMonitor:
    """Pulumi's mocks for this test's program, recording every registration."""
    return recording_monitor()
