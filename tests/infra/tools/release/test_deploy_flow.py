"""The deploy workflow's `pulumi up` steps against the Pulumi engine's rule for targeted updates.

`targeted_update_errors` is that rule, written from the engine's step generator (pulumi/pulumi
`pkg/resource/deploy/step_generator.go`, at 1b5949891b3c):

- providers and the root stack are always part of an operation, targeted or not
  (`isImplicitlyTargetedResource`, lines 1287-1300; pulumi/pulumi#13557, #13591);
- a resource neither targeted nor in the state becomes a "skipped create"
  (`NewSkippedCreateStep`, lines 1778-1782);
- a resource in the state but not targeted gets a SameStep made from its *old* state
  (lines 1550-1740), so its new dependencies are not checked;
- every other step (creates, updates and sames of targeted and implicitly targeted
  resources) is checked in `validateSteps` (lines 479-535): if its provider, parent,
  dependencies, property dependencies, deleted-with or replace-with resource
  (`State.GetAllDependencies`, `pkg/resource/state.go` lines 366-392) is a skipped create, the
  update stops with error 2013, "Resource '<urn>' depends on '<urn>' which was was not
  specified in --target list." (`sdk/go/common/diag/errors.go` lines 75-76;
  `BailErrorf("untargeted create")`, line 533; a preview reports every such pair);
- `--target-dependents` adds a resource to the targets when its provider or one of its
  dependencies is targeted (`isTargetedForUpdate`, lines 156-185, in registration order, line
  1531): it adds dependents, never dependencies, so it cannot make the Kubernetes provider's
  cluster part of a registry-only update.

The workflow is run as a script: its steps in order, their `if:` conditions, the lines that
call `python -m stack.tools.release` (run for real, their key=value lines as step outputs), `pulumi
stack export`, `pulumi config rm/set` of image.tag and `pulumi up` (with or without
`--target`), against a state that starts empty (a new stack) or full (an existing stack).
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from stack.tools.offline import REPO_ROOT, OfflineRun, RecordedResource, pulumi_config_of, run_program
from tests.infra.support.stack_files import STACKS

WORKFLOW = REPO_ROOT / ".github" / "workflows" / "deploy-stack.yml"
IMAGE_TAG = "3f2a9c1d0e"


def real(urn: str) -> str:
    """The engine's URN for a recorded one (the mock monitor adds the root Stack's type)."""
    return urn.replace("::pulumi:pulumi:Stack$", "::", 1)


def targeted_update_errors(
    resources: Iterable[RecordedResource],
    targets: set[str],
    state: set[str],
    *,
    target_dependents: bool = False,
) -> list[str]:
    """What a `pulumi up --target ...` of these registrations reports (empty: it proceeds)."""
    actual = set(targets)
    skipped: set[str] = set()
    errors = []
    for r in resources:  # registration order: dependencies register before their dependents
        urn = real(r.urn)
        dependencies = [real(d) for d in (r.parent, *r.dependencies, r.provider) if d]
        implicit = r.type.startswith("pulumi:providers:")
        targeted = urn in actual or (target_dependents and any(d in actual for d in dependencies))
        if targeted:
            actual.add(urn)
        if targeted or implicit:
            errors += [
                f"Resource '{urn}' depends on '{d}' which was not specified in --target list."
                for d in dependencies
                if d in skipped
            ]
        elif urn not in state:
            skipped.add(urn)
    return errors


def config_with_tag(stack: str, tag: str | None) -> dict[str, str]:
    config = pulumi_config_of(stack)
    image = json.loads(config.get("django-eks:image", "{}"))
    image.pop("tag", None)
    if tag is not None:
        image["tag"] = tag
    config["django-eks:image"] = json.dumps(image)
    return config


_runs: dict[tuple[str, str | None], OfflineRun] = {}


def program_run(stack: str, tag: str | None) -> OfflineRun:
    """The program with the stack file's config and `tag` (pushed) or no image tag."""
    if (stack, tag) not in _runs:
        _runs[stack, tag] = run_program(
            config_with_tag(stack, tag), stack=stack, registry_tags=[tag] if tag else []
        )
    return _runs[stack, tag]


def registry_urns(run: OfflineRun) -> set[str]:
    """The Registry component and its children: what the old first step targeted."""
    components = {r.urn for r in run.resources if r.type == "django-eks:platform:Registry"}
    return {real(r.urn) for r in run.resources if r.urn in components or r.parent in components}


@dataclass
class Deploy:
    """One run of deploy-stack.yml's deploy job, simulated step by step."""

    stack: str
    state: set[str]
    tmp: Path
    tag: str | None = None
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    ups: list[str] = field(default_factory=list)
    exported: dict[str, Any] = field(default_factory=dict)

    def expression(self, text: str) -> str:
        """`${{ steps.<id>.outputs.<key> }}` and a few literals, as the runner substitutes them."""

        def value(match: re.Match[str]) -> str:
            inner = match.group(1).strip()
            step = re.fullmatch(r"steps\.([\w-]+)\.outputs\.([\w-]+)", inner)
            if step:
                return self.outputs.get(step.group(1), {}).get(step.group(2), "")
            return {"inputs.stack": self.stack, "github.sha": IMAGE_TAG}.get(inner, f"<{inner}>")

        return re.sub(r"\$\{\{(.*?)\}\}", value, text)

    def condition(self, text: str) -> bool:
        """A step's `if:`: comparisons of step outputs with literals, and contains()."""
        text = text.strip().removeprefix("${{").removesuffix("}}").strip()
        ref = r"steps\.([\w-]+)\.outputs\.([\w-]+)"
        match = re.fullmatch(ref + r"\s*(==|!=)\s*'([^']*)'", text)
        if match:
            value = self.outputs.get(match.group(1), {}).get(match.group(2), "")
            return (value == match.group(4)) == (match.group(3) == "==")
        match = re.fullmatch(r"contains\(" + ref + r",\s*'([^']*)'\)", text)
        if match:
            return match.group(3) in self.outputs.get(match.group(1), {}).get(match.group(2), "")
        raise AssertionError(f"the simulation cannot evaluate `if: {text}`")

    def release(self, line: str) -> dict[str, str]:
        from stack.tools.release.cli import main

        args = shlex.split(line.split("python -m stack.tools.release", 1)[1].split(">>")[0])
        stdout = io.StringIO()
        with contextlib.redirect_stdout(stdout):
            assert main(args) == 0, line
        return dict(row.split("=", 1) for row in stdout.getvalue().splitlines())

    def up(self, targeted: bool, env: dict[str, str]) -> None:
        run = program_run(self.stack, self.tag)
        self.ups.append("targeted" if targeted else "untargeted")
        if targeted:
            targets = set(env.get("TARGETS", "").split())
            self.errors += targeted_update_errors(run.resources, targets, self.state)
            included = {
                real(r.urn) for r in run.resources if real(r.urn) in targets or r.type.startswith("pulumi:providers:")
            }
            self.state |= included
        else:
            registered = {real(r.urn) for r in run.resources}
            self.deleted += sorted(self.state - registered)
            self.state = registered
        self.exported = dict(run.outputs)

    def run(self) -> None:
        job = yaml.safe_load(WORKFLOW.read_text())["jobs"]["deploy"]
        job_env = {k: self.expression(str(v)) for k, v in (job.get("env") or {}).items()}
        for step in job["steps"]:
            if "if" in step and not self.condition(str(step["if"])):
                continue
            env = {k: self.expression(str(v)) for k, v in (step.get("env") or {}).items()}
            script = self.expression(str(step.get("run", "")))
            env_values = {**job_env, "STACK": self.stack, "RUNNER_TEMP": str(self.tmp), **env}
            script = re.sub(r"\$\{?(\w+)\}?", lambda m: env_values.get(m.group(1), m.group(0)), script)
            outputs: dict[str, str] = {}
            for line in script.splitlines():
                if "python -m stack.tools.release" in line:
                    outputs |= self.release(line)
                elif "pulumi stack export" in line and "--file" in line:
                    path = Path(shlex.split(line.split("--file", 1)[1])[0])
                    path.write_text(json.dumps({"deployment": {"resources": [{"urn": u} for u in sorted(self.state)]}}))
                elif re.search(r"pulumi config rm .*image\.tag", line):
                    self.tag = None
                elif re.search(r"pulumi config set .*image\.tag", line):
                    self.tag = shlex.split(line)[-1]
                elif re.search(r"\bpulumi up\b", line):
                    self.up(targeted="--target" in script, env=env)
            if "id" in step:
                self.outputs[step["id"]] = outputs


def deploy(stack: str, state: set[str], tmp: Path) -> Deploy:
    flow = Deploy(stack, set(state), tmp, tag=json.loads(pulumi_config_of(stack)["django-eks:image"]).get("tag"))
    flow.run()
    return flow


# --- the engine's rule itself ------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_a_registry_only_targeted_update_of_a_new_stack_breaks_the_engines_rule(stack: str) -> None:
    """The old first step, `pulumi up --target <registry URNs>` without image.tag on a stack
    with no state: the Kubernetes provider is always part of the update, and depends on the
    cluster (and its access policies, node groups, add-ons), none of them targeted. Adding
    `--target-dependents` does not help: it targets dependents, not dependencies."""
    run = program_run(stack, None)
    for dependents in (False, True):
        errors = targeted_update_errors(run.resources, registry_urns(run), set(), target_dependents=dependents)
        assert any(
            "pulumi:providers:kubernetes::eks-k8s' depends on" in e and "aws:eks/cluster:Cluster::eks'" in e
            for e in errors
        ), errors
    # With everything else already in the state the same update proceeds.
    full = {real(r.urn) for r in program_run(stack, None).resources}
    assert targeted_update_errors(run.resources, registry_urns(run), full - registry_urns(run)) == []


# --- the workflow against it ------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_the_first_deploy_of_a_new_stack_passes_the_engines_rule(stack: str, tmp_path: Path) -> None:
    flow = deploy(stack, set(), tmp_path)
    assert flow.errors == [], "\n".join(flow.errors[:5])
    # The platform (with its registry) first, untargeted, deleting nothing; then the app.
    assert flow.ups == ["untargeted", "untargeted"]
    assert flow.deleted == []
    assert flow.state == {real(r.urn) for r in program_run(stack, IMAGE_TAG).resources}
    assert flow.exported["imageTag"] == IMAGE_TAG


def test_a_deploy_of_an_existing_stack_skips_the_platform_step(tmp_path: Path) -> None:
    existing = {real(r.urn) for r in program_run("dev", "0.1.0").resources}
    flow = deploy("dev", existing, tmp_path)
    assert flow.errors == [] and flow.deleted == []
    assert flow.ups == ["untargeted"]
    assert flow.exported["imageTag"] == IMAGE_TAG


def test_a_deploy_that_adds_a_provider_dependency_passes_the_engines_rule(tmp_path: Path) -> None:
    """An existing stack whose change adds a dependency of the Kubernetes provider (here a new
    admin principal's access policy association): a registry-only targeted step would stop on it."""
    existing = {real(r.urn) for r in program_run("dev", "0.1.0").resources}
    new_principal = {u for u in existing if "accessPolicyAssociation" in u and "admin-" in u}
    assert new_principal
    flow = deploy("dev", existing - new_principal, tmp_path)
    assert flow.errors == [], "\n".join(flow.errors[:5])
    assert flow.deleted == []


# --- builds for architectures the runner does not have -----------------------------------

NATIVE = {"X64": "amd64", "ARM64": "arm64"}


def qemu_step_runs(outputs: dict[str, str]) -> bool:
    """Whether the workflow's QEMU step runs, given the `Stack facts` step's outputs."""
    job = yaml.safe_load(WORKFLOW.read_text())["jobs"]["deploy"]
    (qemu,) = [s for s in job["steps"] if str(s.get("uses", "")).startswith("docker/setup-qemu-action@")]
    (facts,) = [s for s in job["steps"] if "python -m stack.tools.release image" in str(s.get("run", ""))]
    flow = Deploy("unused", set(), Path("."))
    flow.outputs[facts["id"]] = outputs
    return "if" not in qemu or flow.condition(str(qemu["if"]))


def image_outputs(stack: str, root: Path = REPO_ROOT) -> dict[str, str]:
    """The `Stack facts` step's outputs, as the workflow's command prints them on the runner."""
    from stack.tools.release.cli import main

    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        assert main(["image", "--stack", stack], root=root) == 0
    return dict(row.split("=", 1) for row in stdout.getvalue().splitlines())


@pytest.mark.parametrize("runner_arch", sorted(NATIVE))
@pytest.mark.parametrize("stack", STACKS)
def test_every_platform_the_runner_cannot_run_is_emulated(stack: str, runner_arch: str, monkeypatch: Any) -> None:
    """buildx builds a foreign platform's stages by running its binaries; without QEMU
    registered in binfmt_misc every RUN fails with "exec format error". GitHub sets
    RUNNER_ARCH (X64, ARM64) on every runner, hosted or self-hosted."""
    monkeypatch.setenv("RUNNER_ARCH", runner_arch)
    outputs = image_outputs(stack)
    foreign = {p.removeprefix("linux/") for p in outputs["platforms"].split(",")} - {NATIVE[runner_arch]}
    assert qemu_step_runs(outputs) == bool(foreign), (outputs, runner_arch)
    if foreign:
        assert set(outputs["emulated"].split(",")) == foreign


def test_a_graviton_only_stack_on_an_x64_runner_builds_under_emulation(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("RUNNER_ARCH", "X64")
    document = yaml.safe_load((REPO_ROOT / "Pulumi.dev.yaml").read_text())
    for pool in document["config"]["django-eks:nodePools"].values():
        pool["instanceType"] = "m6g.large"
    (tmp_path / "Pulumi.graviton.yaml").write_text(yaml.safe_dump(document))
    outputs = image_outputs("graviton", root=tmp_path)
    assert outputs["platforms"] == "linux/arm64"
    assert qemu_step_runs(outputs)
    assert outputs["emulated"] == "arm64"
    monkeypatch.setenv("RUNNER_ARCH", "ARM64")  # a native arm runner needs none
    assert not qemu_step_runs(image_outputs("graviton", root=tmp_path))
