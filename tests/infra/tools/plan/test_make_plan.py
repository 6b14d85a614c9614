"""`make plan` needs only the Python environment, with its bytecode compiled once."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from stack.tools.plan.report import REPO_ROOT

needs_make = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def dry_run(*targets: str) -> str:
    done = subprocess.run(
        ["make", "-n", "-B", *targets], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout


@needs_make
def test_plan_does_not_install_npm_tools() -> None:
    commands = dry_run("plan")
    assert "npm" not in commands
    assert "uv sync --frozen --compile-bytecode" in commands
    assert "python -m stack.tools.plan --stack dev" in commands


@needs_make
def test_plan_reads_the_compiled_caches_in_any_environment() -> None:
    commands = dry_run("plan")
    plan_line = next(line for line in commands.splitlines() if "python -m stack.tools.plan" in line)
    assert plan_line.startswith("env -u PYTHONPYCACHEPREFIX ")


@needs_make
def test_install_still_brings_the_npm_tools_for_the_tests() -> None:
    assert "npm ci" in dry_run("install")
