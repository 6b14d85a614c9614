"""Stack files are read in one place, and a malformed value gets an error under its key."""

from __future__ import annotations

from pathlib import Path

import pytest

from stack.config.loader import REPO_ROOT, config_from_stack_file, decoded_stack_file, load_stack_config
from stack.config.rules import StackConfigError
from stack.tools.plan.cli import main as plan_main
from stack.tools.release.cli import main as release_main


def _repository_with_empty_benchmark(root: Path) -> None:
    """A copy of the repository whose dev stack file says `django-eks:benchmark: ""`."""
    for name in ("infra", "service", "Pulumi.yaml"):
        (root / name).symlink_to(REPO_ROOT / name)
    text = (REPO_ROOT / "Pulumi.dev.yaml").read_text()
    (root / "Pulumi.dev.yaml").write_text(text.replace("\nconfig:\n", '\nconfig:\n  django-eks:benchmark: ""\n', 1))


def test_an_empty_section_is_reported_under_its_key(tmp_path: Path) -> None:
    _repository_with_empty_benchmark(tmp_path)
    assert decoded_stack_file("dev", tmp_path)["django-eks:benchmark"] == ""
    with pytest.raises(StackConfigError, match="benchmark"):
        config_from_stack_file("dev", tmp_path)


def test_the_plan_reports_it_under_its_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _repository_with_empty_benchmark(tmp_path)
    assert plan_main(["--stack", "dev", "--root", str(tmp_path), "--no-results"]) == 1
    assert "- benchmark: " in capsys.readouterr().out


def test_the_release_tool_reports_it_under_its_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _repository_with_empty_benchmark(tmp_path)
    assert release_main(["runner", "--stack", "dev"], root=tmp_path) == 1
    assert "benchmark:" in capsys.readouterr().err


def test_an_object_that_is_not_json_is_reported_under_its_key(tmp_path: Path) -> None:
    _repository_with_empty_benchmark(tmp_path)
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text(path.read_text().replace('django-eks:benchmark: ""', "django-eks:benchmark: '{nodePool: web'"))
    with pytest.raises(StackConfigError, match="benchmark: is not valid JSON"):
        config_from_stack_file("dev", tmp_path)


APP_JSON = (
    '{"settingsModule": "notes.settings", "wsgi": "notes.wsgi:application", "celery": "notes", '
    '"secrets": {"NOTES_API_TOKEN": "decrypted-token-value"}}'
)


def test_the_engines_decrypted_app_secrets_are_accepted_and_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    # How the language host hands config to a program: PULUMI_CONFIG, and the keys whose values
    # it decrypted in PULUMI_CONFIG_SECRET_KEYS (pulumi/runtime/config.py).
    import json

    from pulumi.runtime import config as runtime_config

    runtime_config.set_all_config({}, [])
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps({"django-eks:app": APP_JSON, "aws:region": "us-east-1"}))
    monkeypatch.setenv("PULUMI_CONFIG_SECRET_KEYS", json.dumps(["django-eks:app"]))
    config = load_stack_config()
    assert config.app is not None and config.app.decrypted_secrets == ["NOTES_API_TOKEN"]
    assert "decrypted-token-value" not in repr(config)
    # The same value not listed as a secret was plain text in the stack file: refused.
    monkeypatch.setenv("PULUMI_CONFIG_SECRET_KEYS", "[]")
    with pytest.raises(StackConfigError, match="app.secrets.NOTES_API_TOKEN"):
        load_stack_config()
