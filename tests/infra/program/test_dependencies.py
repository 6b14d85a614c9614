"""The program runs with the main dependencies alone.

The workflows install them with `uv sync --no-dev` (no service, no uWSGI build on every
runner), and the Pulumi CLI runs the program, and every plugin it starts, in that
environment. So every module of the `stack` package must import when the distributions that
only the dev group brings are absent: a subprocess imports them all with those distributions'
top-level modules blocked, as a fresh `uv sync --no-dev` environment would lack them.
"""

from __future__ import annotations

import importlib.metadata as metadata
import json
import subprocess
import sys
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from stack.tools.offline import REPO_ROOT

IMPORT_ALL = """
import importlib, importlib.abc, json, pkgutil, sys
blocked = set(sys.argv[1].split(","))
class DevOnly(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.partition(".")[0] in blocked:
            raise ModuleNotFoundError(f"No module named {name!r} (a dev-group distribution)")
        return None
sys.meta_path.insert(0, DevOnly())
sys.path.insert(0, "infra")
import stack
failures = []
for module in pkgutil.walk_packages(stack.__path__, "stack."):
    if module.name.endswith(".__main__"):  # runs its command on import; imports cli modules only
        continue
    try:
        importlib.import_module(module.name)
    except Exception as error:
        failures.append(f"{module.name}: {error!r}")
print(json.dumps(failures))
"""


def main_distributions() -> set[str]:
    """The project's [project].dependencies and everything they require (no extras)."""
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    pending = [Requirement(r) for r in project["dependencies"]]
    found: set[str] = set()
    while pending:
        requirement = pending.pop()
        name = canonicalize_name(requirement.name)
        if name in found or (requirement.marker and not requirement.marker.evaluate({"extra": ""})):
            continue
        found.add(name)
        pending += [Requirement(r) for r in metadata.distribution(name).requires or []]
    return found


def dev_only_modules() -> set[str]:
    """Top-level modules that only distributions outside the main closure provide."""
    main = main_distributions() | {"django-eks"}
    return {
        module
        for module, distributions in metadata.packages_distributions().items()
        if not any(canonicalize_name(d) in main for d in distributions)
    }


def test_the_main_closure_is_what_the_program_imports() -> None:
    main = main_distributions()
    assert {"pulumi", "pulumi-aws", "pulumi-kubernetes", "pydantic", "pyyaml", "grpcio"} <= main
    blocked = dev_only_modules()
    # The dev group's own: the service (Django, uWSGI), the test and lint tools.
    assert {"django", "pytest", "mypy", "moto"} <= blocked
    assert not {"pulumi", "pulumi_aws", "yaml", "pydantic", "boto3"} & blocked


def test_every_module_of_the_program_imports_without_the_dev_group() -> None:
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_ALL, ",".join(sorted(dev_only_modules()))],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []
