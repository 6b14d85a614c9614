"""The one reader of stack config: stack files (Pulumi.<stack>.yaml) and the Pulumi runtime.

Every tool, test and the program read a stack's config through here, so that a value is decoded
the same way everywhere: objects and lists as JSON text (as the CLI hands them to a program),
scalars as text, and a malformed value reported under its key (StackConfigError), never as a
parser's traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from stack.config.model import PROJECT, StackConfig
from stack.config.rules import ConfigProblem, StackConfigError, parse_stack_config

REPO_ROOT = Path(__file__).resolve().parents[3]


def stack_file(stack: str, root: Path = REPO_ROOT) -> Path:
    return root / f"Pulumi.{stack}.yaml"


def stack_names(root: Path = REPO_ROOT) -> list[str]:
    """Every stack with a Pulumi.<stack>.yaml in the repository, in name order."""
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in root.glob("Pulumi.*.yaml"))


def pulumi_config_of(stack: str, root: Path = REPO_ROOT) -> dict[str, str]:
    """The stack file's config as the CLI hands it to a program: objects as JSON strings."""
    document = yaml.safe_load(stack_file(stack, root).read_text()) or {}
    values = document.get("config") or {}
    return {
        str(key): value if isinstance(value, str) else json.dumps(value)
        for key, value in values.items()
    }


def decode_config_value(name: str, value: Any) -> Any:
    """A config value as the CLI hands it over: objects and lists as JSON text, scalars as text."""
    if isinstance(value, str) and value.lstrip().startswith(("{", "[")):
        try:
            return json.loads(value)
        except json.JSONDecodeError as e:
            raise StackConfigError([ConfigProblem(name, f"is not valid JSON ({e})")]) from None
    return value


APP_KEY = f"{PROJECT}:app"
"""The key whose `secure:` values (app.secrets) the engine decrypts and marks secret."""


def app_secrets_decrypted() -> bool:
    """Whether the engine handed over the `app` key as a secret, as it does a key holding any
    `secure:` value, decrypted: the language host lists such keys in PULUMI_CONFIG_SECRET_KEYS
    beside the values in PULUMI_CONFIG (pulumi 3.272 pulumi/runtime/config.py:80-87,
    `get_config_secret_keys_env`), and `set_all_config(config, secret_keys)` sets them for a
    provider or the mocks (config.py:39-51, read by `is_config_secret`, config.py:111-115)."""
    from pulumi.runtime import config as runtime_config

    return runtime_config.is_config_secret(APP_KEY) or APP_KEY in runtime_config.get_config_secret_keys_env()


def raw_config_from_pulumi(project: str = PROJECT) -> dict[str, Any]:
    """This project's config keys (namespace stripped, objects decoded) plus aws:region."""
    from pulumi.runtime import config as runtime_config

    keys = set(runtime_config.CONFIG.get()) | set(runtime_config.get_config_env())
    raw: dict[str, Any] = {}
    for key in sorted(keys):
        namespace, _, name = key.partition(":")
        if namespace != project:
            continue
        raw[name] = decode_config_value(name, runtime_config.get_config(key))
    region = runtime_config.get_config("aws:region")
    if region is not None:
        raw["region"] = region
    return raw


def load_stack_config() -> StackConfig:
    """The validated config of the running stack. Raises StackConfigError before any resource."""
    return parse_stack_config(raw_config_from_pulumi(), secrets_decrypted=app_secrets_decrypted())


def project_config(pulumi_config: dict[str, Any]) -> dict[str, Any]:
    """{namespaced key: value} -> this project's keys without namespace, plus `region`."""
    raw: dict[str, Any] = {}
    for key, value in pulumi_config.items():
        namespace, _, name = key.partition(":")
        if namespace == PROJECT:
            raw[name] = decode_config_value(name, value)
        elif key == "aws:region":
            raw["region"] = value
    return raw


def decoded_stack_file(stack: str, root: Path = REPO_ROOT) -> dict[str, Any]:
    """A stack file's config with values decoded, keyed as written (namespaced)."""
    return {key: decode_config_value(key, value) for key, value in pulumi_config_of(stack, root).items()}


def config_from_stack_file(stack: str, root: Path = REPO_ROOT) -> StackConfig:
    """The validated config of a stack file, without running the program."""
    return parse_stack_config(project_config(pulumi_config_of(stack, root)))
