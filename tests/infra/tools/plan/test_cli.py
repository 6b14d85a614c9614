"""The offline plan's command line: tables, JSON, manifests and the cost diff.

One run of `python -m stack.tools.plan` per output mode (text with manifests and results, JSON)
and of `python -m stack.tools.plan.diff`, as `make plan` and the workflows start them; everything
else in-process.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from stack.tools.plan.cli import main
from stack.tools.plan.diff import MARKER, cost_diff_markdown
from stack.tools.plan.report import REPO_ROOT, plan_stack, stack_names
from stack.tools.plan.resources import SECRET, manifest_of, plain, settings_of
from stack.tools.plan.text import render_side_by_side, render_stack
from tests.infra.support.benchmarks import BENCH_SMALL as FIXTURE
from tests.infra.support.stack_files import APP_STACKS

STACKS = stack_names()
OFFLINE = importlib.util.find_spec("stack.tools.offline") is not None
needs_offline = pytest.mark.skipif(not OFFLINE, reason="stack.tools.offline (the offline runner) is not in this tree yet")


def run_plan(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stack.tools.plan", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


@cache
def all_stacks_json() -> dict[str, Any]:
    result = run_plan("--stack", "all", "--json")
    assert result.returncode in (0, 1), result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def test_plan_without_the_program_has_capacity_and_cost_for_every_stack() -> None:
    for stack in STACKS:
        plan = plan_stack(stack, run_program=False)
        assert plan.errors == [], plan.errors
        assert plan.capacity is not None and plan.cost is not None
        document = plan.as_json()
        assert document["monthly_cost_usd"] == plan.cost.monthly_usd > 0
        assert {"stack", "resources", "capacity", "cost", "monthly_cost_usd", "summary", "errors", "warnings"} <= set(
            document
        )
        json.dumps(document)


def test_side_by_side_lists_every_stack() -> None:
    plans = [plan_stack(stack, run_program=False) for stack in STACKS]
    table = render_side_by_side(plans)
    for plan in plans:
        row = next(line for line in table.splitlines() if line.startswith(plan.stack + " "))
        assert f"${plan.monthly_cost_usd:,.2f}" in row
    assert "$/worker vCPU" in table


def test_text_report_has_every_section() -> None:
    text = render_stack(plan_stack("prod", run_program=False))
    for section in ("Stack prod", "Capacity", "Monthly cost", "total", "Problems"):
        assert section in text


def test_settings_pick_what_a_reviewer_looks_at() -> None:
    deployment = {
        "spec": {
            "replicas": 3.0,
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "web",
                            # The image's launcher and its settings (service/config/launch.py).
                            "command": ["python", "-m", "config.launch", "web"],
                            "env": [{"name": "WEB_PROCESSES", "value": "1"}, {"name": "WEB_THREADS", "value": "8"}],
                            "resources": {"requests": {"cpu": "500m", "memory": "512Mi"}},
                        }
                    ]
                }
            },
        }
    }
    assert settings_of("kubernetes:apps/v1:Deployment", deployment) == {
        "replicas": 3,
        "cpu": "500m",
        "memory": "512Mi",
        "workers": "1",
        "threads": "8",
    }
    node_group = {"instanceTypes": ["c5.large"], "scalingConfig": {"minSize": 2.0, "desiredSize": 3.0, "maxSize": 6.0}}
    assert settings_of("aws:eks/nodeGroup:NodeGroup", node_group) == {
        "instanceTypes": ["c5.large"],
        "min": 2,
        "desired": 3,
        "max": 6,
    }


def test_secrets_are_masked_and_manifests_have_kind_and_api_version() -> None:
    secret = {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", "value": "hunter2"}
    assert plain({"a": secret, "n": 2.0}) == {"a": SECRET, "n": 2}

    class Recorded:
        type = "kubernetes:core/v1:Secret"
        name = "app-secrets"
        custom = True
        inputs = {"metadata": {"name": "app", "namespace": "app"}, "stringData": {"KEY": secret}}

    assert manifest_of(Recorded()) == {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "app", "namespace": "app"},
        "stringData": {"KEY": SECRET},
    }


def test_cost_diff_is_a_markdown_table() -> None:
    def doc(cost: float, nodes: int, extra: bool = False) -> dict[str, Any]:
        stacks = [
            {
                "stack": "dev",
                "summary": {"monthly_cost_usd": cost, "monthly_cost_at_max_usd": cost + 10, "nodes_desired": nodes, "nodes_max": 3},
                "cost": {"items": [{"item": "node pool default", "monthlyUsd": cost - 100}]},
                "errors": [],
            }
        ]
        if extra:
            stacks.append({"stack": "exp", "summary": {"monthly_cost_usd": 50.0}, "errors": ["boom"]})
        return {"price_date": "2026-08-20", "stacks": stacks}

    markdown = cost_diff_markdown(doc(300.0, 2), doc(373.0, 3, extra=True))
    assert markdown.startswith(MARKER)
    assert "| dev | $300.00 | $373.00 | +$73.00 (+24.3%) | $383.00 | 2/3 -> 3/3 |" in markdown
    assert "| exp (added) | n/a | $50.00 | n/a |" in markdown
    assert "node pool default: $200.00 -> $273.00" in markdown
    assert "**exp** error: boom" in markdown


@needs_offline
def test_all_stacks_json_from_the_real_program() -> None:
    document = all_stacks_json()
    assert [s["stack"] for s in document["stacks"]] == STACKS
    for stack in document["stacks"]:
        assert stack["offline_run"], stack["errors"]
        assert stack["resource_count"] > 0
        types = {r["type"] for r in stack["resources"]}
        assert {"aws:eks/nodeGroup:NodeGroup", "kubernetes:apps/v1:Deployment"} <= types
        assert stack["monthly_cost_usd"] > 0
        assert stack["capacity"]["pools"]
        assert all(v != "hunter2" for v in stack["outputs"].values())


@needs_offline
def test_all_stacks_text_from_the_real_program(tmp_path: Path) -> None:
    result = run_plan("--stack", "all", "--manifests", str(tmp_path), "--results", str(FIXTURE))
    assert result.returncode in (0, 1), result.stderr
    assert "Stacks side by side" in result.stdout
    # Every stack of the demo; an app's stack says the demo's results do not apply to it.
    assert result.stdout.count("Throughput at full use") == len(STACKS) - len(APP_STACKS)
    assert result.stdout.count("Throughput: n/a: the benchmark results measure the demo service") == len(APP_STACKS)
    for stack in STACKS:
        assert f"Stack {stack} (Pulumi.{stack}.yaml)" in result.stdout
        manifests = sorted((tmp_path / stack).glob("*.yaml"))
        kinds = {yaml.safe_load(p.read_text()).get("kind") for p in manifests}
        assert {"Deployment", "Service", "HorizontalPodAutoscaler"} <= kinds


@needs_offline
def test_the_cost_diff_of_two_plans_as_the_pull_request_workflow_runs_it(tmp_path: Path) -> None:
    # .github/workflows/pull-request.yml: `python -m stack.tools.plan.diff base.json pr.json`.
    base = all_stacks_json()
    head = {**base, "stacks": base["stacks"][1:]}
    (tmp_path / "base.json").write_text(json.dumps(base))
    (tmp_path / "pr.json").write_text(json.dumps(head))
    result = subprocess.run(
        [sys.executable, "-m", "stack.tools.plan.diff", str(tmp_path / "base.json"), str(tmp_path / "pr.json")],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(MARKER)
    removed, *kept = [s["stack"] for s in base["stacks"]]
    assert f"| {removed} (removed) |" in result.stdout
    for stack in kept:  # the same plan: no change
        (row,) = [line for line in result.stdout.splitlines() if line.startswith(f"| {stack} | ")]
        assert "| $0.00 |" in row, row


def test_unknown_stack_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--stack", "nope"]) == 2
    assert "unknown stack 'nope'" in capsys.readouterr().err


CIPHERTEXT = "v1:ciphertext-canary-0b7d"
"""An app secret as the stack file stores it: only the engine could decrypt it."""


def test_the_plan_of_an_app_with_secrets_says_it_cannot_decrypt_them_and_shows_no_secret(tmp_path: Path) -> None:
    # A stack file like the example's with a `secure:` secret, beside the real program.
    document = yaml.safe_load((REPO_ROOT / "Pulumi.exp-example.yaml").read_text())
    document["config"]["django-eks:app"]["secrets"] = {"NOTES_API_TOKEN": {"secure": CIPHERTEXT}}
    (tmp_path / "Pulumi.exp-secret.yaml").write_text(yaml.safe_dump(document))
    (tmp_path / "infra").symlink_to(REPO_ROOT / "infra")
    out = tmp_path / "manifests"
    text = run_plan("--stack", "exp-secret", "--root", str(tmp_path), "--manifests", str(out))
    as_json = run_plan("--stack", "exp-secret", "--root", str(tmp_path), "--json")
    assert text.returncode == 0 and as_json.returncode == 0, text.stdout + text.stderr + as_json.stderr
    (plan,) = json.loads(as_json.stdout)["stacks"]
    assert plan["errors"] == []
    (warning,) = [w for w in plan["warnings"] if w.startswith("app.secrets:")]
    assert "NOTES_API_TOKEN" in warning and "cannot decrypt" in warning
    assert "cannot decrypt" in text.stdout
    written = "\n".join(p.read_text() for p in sorted(out.rglob("*.yaml")))
    (secret,) = [yaml.safe_load(p.read_text()) for p in out.rglob("*-secret-app-secrets.yaml")]
    assert secret["stringData"] == SECRET  # the whole Secret shown as a secret
    for shown in (text.stdout, as_json.stdout, written):
        assert CIPHERTEXT not in shown and "ciphertext-canary" not in shown
