"""The dynamic provider's plugin starts the way the Pulumi CLI starts it.

Every preview, up, refresh and destroy loads NodeGroupScaling's provider: the engine starts the
`pulumi-resource-pulumi-python` launcher, which must find an interpreter that can load the
provider the program stored in the state. These tests reproduce, from the engine's source, the
directory and environment the launcher gets, apply the launcher's rules to them, and start the
real provider host (`python -u -m pulumi.dynamic`) as the launcher would, then talk to it over
gRPC as the engine does.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from google.protobuf import struct_pb2
from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc

from stack.tools.offline import REPO_ROOT, is_secret, pulumi_config_of
from tests.infra.support.stack_files import stack_run

DYNAMIC_PACKAGE = "pulumi-python"
"""The package of Python dynamic resources (pulumi/pulumi pkg/resource/deploy/target.go,
pythonDynamicProviderPackage)."""


def project() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((REPO_ROOT / "Pulumi.yaml").read_text())
    return document


def plugin_working_directory(root: Path, main: str | None) -> Path:
    """Where the engine starts every plugin: `ctx.Pwd` from `getPwdMain` (pulumi/pulumi
    pkg/engine/project.go:45-72, called by ProjectInfoContext in pkg/engine/deployment.go:57):
    `main` joined to the project root when relative, and the directory itself when `main` is
    one (else its parent)."""
    if not main:
        return root
    path = Path(os.path.normpath(root / main))
    return path if path.is_dir() else path.parent


def go_format(value: Any) -> str:
    """`fmt.Sprintf("%v", v)` of a YAML scalar as Go decodes it (true -> "true")."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def plugin_environment(parent: Mapping[str, str], stack: str) -> dict[str, str]:
    """The environment of the dynamic-provider plugin process.

    pulumi/pulumi sdk/go/common/resource/plugin/provider_plugin.go:243-262: each runtime option
    of Pulumi.yaml becomes PULUMI_RUNTIME_<OPTION upper-cased> = fmt "%v" of its value, plus
    PULUMI_PROJECT and PULUMI_CONFIG (the JSON of the stack's config keys in the plugin's own
    namespace, pkg/host/host.go:357-367); plugin.go:500-505 (ExecPlugin) appends these to
    os.Environ() and sets cmd.Env explicitly (plugin.go:599-603), so Go does not set PWD: the
    plugin inherits the CLI's PWD.
    """
    env = {k: v for k, v in parent.items() if not k.startswith("PULUMI_RUNTIME_")}
    runtime = project()["runtime"]
    options = runtime.get("options", {}) if isinstance(runtime, dict) else {}
    for key, value in options.items():
        env[f"PULUMI_RUNTIME_{key.upper()}"] = go_format(value)
    env["PULUMI_PROJECT"] = project()["name"]
    own = {
        key.partition(":")[2]: value
        for key, value in pulumi_config_of(stack).items()
        if key.partition(":")[0] == DYNAMIC_PACKAGE
    }
    env["PULUMI_CONFIG"] = json.dumps(own)
    return env


def shell_pwd(inherited: str | None, cwd: Path) -> str:
    """$PWD as a POSIX shell sets it at start-up: the inherited value if it is an absolute path
    of the current directory without . or .. components, else the physical path (`pwd -P`).
    https://pubs.opengroup.org/onlinepubs/9799919799/utilities/V3_chap02.html#tag_19_05_03
    (PWD)."""
    if inherited and os.path.isabs(inherited) and not {".", ".."} & set(inherited.split("/")):
        if os.path.exists(inherited) and os.path.samefile(inherited, cwd):
            return inherited
    return os.path.realpath(cwd)


@dataclass(frozen=True)
class Launch:
    command: list[str]
    env: dict[str, str]
    error: str = ""


def launcher(env: Mapping[str, str], cwd: Path) -> Launch:
    """Our reading of pulumi/pulumi sdk/python/dist/pulumi-resource-pulumi-python (a sh script):
    lines 5-11, no PULUMI_RUNTIME_VIRTUALENV and PULUMI_RUNTIME_TOOLCHAIN=uv -> ".venv"
    (poetry asks `poetry env info --path`); lines 15-21, trailing slash removed and a relative
    path joined to $PWD; lines 24-33, `<venv>/bin/python` must be a file (`-f`), then PATH gets
    `<venv>/bin`, PYTHONHOME is unset and `<venv>/bin/python -u -m pulumi.dynamic $@` runs;
    lines 34-45, otherwise exit 1; lines 47-49, with no virtualenv at all,
    ${PULUMI_PYTHON_CMD:-python3} from PATH."""
    venv = env.get("PULUMI_RUNTIME_VIRTUALENV", "")
    if not venv and env.get("PULUMI_RUNTIME_TOOLCHAIN") == "uv":
        venv = ".venv"
    if not venv:
        return Launch([env.get("PULUMI_PYTHON_CMD", "python3"), "-u", "-m", "pulumi.dynamic"], dict(env))
    venv = venv.removesuffix("/")
    if not venv.startswith("/"):
        venv = f"{shell_pwd(env.get('PWD'), cwd)}/{venv}"
    python = f"{venv}/bin/python"
    if not os.path.isfile(python):
        return Launch([], dict(env), error=f"virtualenv {venv!r} has no bin/python: the launcher exits 1")
    started = {k: v for k, v in env.items() if k != "PYTHONHOME"}
    started["PATH"] = f"{venv}/bin:{env.get('PATH', '')}"
    return Launch([python, "-u", "-m", "pulumi.dynamic"], started)


def language_host_virtualenv(root: Path, program_dir: Path, options: Mapping[str, Any]) -> Path:
    """The virtualenv the Python language host runs the program in with `toolchain: uv`:
    pulumi/pulumi sdk/python/toolchain/toolchain.go:157-162 (a relative `virtualenv` option is
    joined to the project root) and uv.go:57-100 (without it, the directory of the nearest
    uv.lock above the program directory, then UV_PROJECT_ENVIRONMENT or .venv)."""
    virtualenv = str(options.get("virtualenv", ""))
    if virtualenv:
        return Path(virtualenv) if os.path.isabs(virtualenv) else root / virtualenv
    project_dir = next((d for d in [program_dir, *program_dir.parents] if (d / "uv.lock").exists()), root)
    return project_dir / os.environ.get("UV_PROJECT_ENVIRONMENT", ".venv")


@pytest.fixture(scope="module")
def stored_provider() -> str:
    """The `__provider` input the program registers for a node group's bounds: what the engine
    stores in the state and hands back to the provider host (as plain text: the host's
    Configure answers acceptSecrets=False, pulumi/dynamic/__main__.py Configure)."""
    run = stack_run("dev")
    blob = run.of_type("pulumi-python:dynamic:Resource")[0].inputs["__provider"]
    assert is_secret(blob)
    value: str = blob["value"]
    return value


@pytest.fixture
def provider_host(tmp_path: Path) -> Iterator[provider_pb2_grpc.ResourceProviderStub]:
    """The provider host started as the engine starts it, or the launcher's refusal."""
    program = project()
    cwd = plugin_working_directory(REPO_ROOT, program.get("main"))
    # The user runs `pulumi up` from the repository's root: that is the CLI's PWD.
    parent = {**os.environ, "PWD": str(REPO_ROOT)}
    launch = launcher(plugin_environment(parent, "dev"), cwd)
    assert not launch.error, launch.error
    process = subprocess.Popen(
        [*launch.command, "127.0.0.1:0"], cwd=cwd, env=launch.env,
        stdout=subprocess.PIPE, stderr=(tmp_path / "host.stderr").open("w"), text=True,
    )
    try:
        assert process.stdout is not None
        port = process.stdout.readline().strip()
        assert port.isdigit(), (tmp_path / "host.stderr").read_text()
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield provider_pb2_grpc.ResourceProviderStub(channel)
    finally:
        process.kill()
        process.wait(timeout=30)


def struct(values: Mapping[str, Any]) -> struct_pb2.Struct:
    result = struct_pb2.Struct()
    result.update(dict(values))
    return result


def test_the_program_and_the_plugin_use_the_same_environment() -> None:
    """The language host runs the program in the repository's uv environment; the launcher,
    started in `main`, must resolve to that same environment, whatever the CLI's PWD."""
    program = project()
    options = program["runtime"].get("options", {})
    cwd = plugin_working_directory(REPO_ROOT, program.get("main"))
    program_venv = language_host_virtualenv(REPO_ROOT, cwd, options)
    for cli_pwd in (str(REPO_ROOT), str(cwd), "/"):
        launch = launcher(plugin_environment({**os.environ, "PWD": cli_pwd}, "dev"), cwd)
        assert not launch.error, f"pulumi run from {cli_pwd}: {launch.error}"
        assert Path(launch.command[0]).resolve() == (program_venv / "bin" / "python").resolve()


def test_the_plugins_interpreter_imports_the_providers_module() -> None:
    """`python -m pulumi.dynamic` puts its working directory first on sys.path, as `-c` does:
    from `main`, the launcher's interpreter imports the provider's module and its SDKs."""
    program = project()
    cwd = plugin_working_directory(REPO_ROOT, program.get("main"))
    launch = launcher(plugin_environment({**os.environ, "PWD": str(REPO_ROOT)}, "dev"), cwd)
    assert not launch.error, launch.error
    code = "import boto3, dill, pulumi.dynamic, stack.platform.node_group_scaling as m; print(m.__file__)"
    result = subprocess.run([launch.command[0], "-u", "-c", code], cwd=cwd, env=launch.env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()).resolve() == (
        REPO_ROOT / "infra/stack/platform/node_group_scaling.py"
    ).resolve()


def test_the_plugin_loads_the_provider_the_program_stored(
    provider_host: provider_pb2_grpc.ResourceProviderStub, stored_provider: str
) -> None:
    """The provider host, started from `main` with the engine's environment, deserializes the
    stored provider (dill) and runs its diff: what every preview and up asks of it."""
    # The engine configures a dynamic provider with the whole stack config, keys with their
    # namespace (pkg/resource/deploy/target.go GetPackageConfig).
    provider_host.Configure(provider_pb2.ConfigureRequest(args=struct(pulumi_config_of("dev"))))
    olds = {"__provider": stored_provider, "region": "us-east-1", "cluster_name": "c",
            "node_group_name": "g", "min_size": 1, "max_size": 3}
    same = provider_host.Diff(provider_pb2.DiffRequest(id="c/g", olds=struct(olds), news=struct(olds)))
    raised = provider_host.Diff(
        provider_pb2.DiffRequest(id="c/g", olds=struct(olds), news=struct({**olds, "min_size": 2}))
    )
    assert same.changes == provider_pb2.DiffResponse.DIFF_NONE
    assert raised.changes == provider_pb2.DiffResponse.DIFF_SOME
