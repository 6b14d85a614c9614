"""The plan warns when a STANDARD-support stack's Kubernetes version is past standard support."""

from __future__ import annotations

import shutil
from pathlib import Path

from stack.tools.offline import REPO_ROOT
from stack.tools.plan.report import plan_stack


def _stack_file(root: Path, version: str, support: str) -> None:
    text = (REPO_ROOT / "Pulumi.dev.yaml").read_text()
    text = text.replace('version: "1.35"\n    supportType: STANDARD', f'version: "{version}"\n    supportType: {support}')
    assert f'version: "{version}"' in text
    (root / "Pulumi.dev.yaml").write_text(text)
    shutil.copy(REPO_ROOT / "Pulumi.yaml", root / "Pulumi.yaml")


def test_a_forced_upgrade_is_a_plan_warning(tmp_path: Path) -> None:
    _stack_file(tmp_path, "1.33", "STANDARD")
    plan = plan_stack("dev", root=tmp_path, run_program=False)
    (warning,) = [w for w in plan.warnings if w.startswith("cluster.supportType")]
    assert "1.33" in warning and "ended 2026-07-29" in warning
    assert not plan.errors


def test_extended_support_is_priced_not_warned(tmp_path: Path) -> None:
    _stack_file(tmp_path, "1.33", "EXTENDED")
    plan = plan_stack("dev", root=tmp_path, run_program=False)
    assert not [w for w in plan.warnings if w.startswith("cluster.supportType")]
    assert plan.cost is not None
    assert plan.cost.items[0].item == "EKS control plane (Kubernetes 1.33, extended support)"
