"""The example's image definition, checked without a Docker engine as the demo's is."""

import fnmatch
import json
import shutil
import subprocess
import sys
from pathlib import Path

from tests.examples.notes_app import EXAMPLE_DIR

ROOT = EXAMPLE_DIR.parents[1]
DOCKERFILE = EXAMPLE_DIR / "Dockerfile"


def test_hadolint_passes():
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    result = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_each_target_starts_its_process_through_the_runtimes_launcher():
    text = DOCKERFILE.read_text()
    stage = ""
    commands: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line.startswith("FROM ") and " AS " in line:
            stage = line.rsplit(" AS ", 1)[1].strip()
        elif line.startswith("CMD "):
            commands[stage] = json.loads(line[4:])  # exec form only: shell form would not parse
    assert commands == {process: ["python", "-m", "django_eks_runtime", process]
                        for process in ("worker", "beat", "migrate", "web")}


def test_the_build_context_holds_every_file_the_dockerfile_copies():
    rules = [line.strip() for line in (EXAMPLE_DIR / "Dockerfile.dockerignore").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    allowed = [rule[1:].rstrip("/") for rule in rules if rule.startswith("!")]
    copied = [source for line in DOCKERFILE.read_text().splitlines()
              if line.startswith("COPY ") and "--from" not in line for source in line.split()[1:-1]]
    assert "examples/notes/notesite" in copied
    for source in copied:
        source = source.rstrip("/")
        assert (ROOT / source).exists(), source
        # Sent whole, or (a folder) the parts of it the image needs.
        assert any(source == rule or source.startswith(rule + "/") or rule.startswith(source + "/")
                   or fnmatch.fnmatch(source, rule) for rule in allowed), source
