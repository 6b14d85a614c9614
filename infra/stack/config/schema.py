"""The JSON Schema of a Pulumi.<stack>.yaml file and the config reference, from the model.

`python -m stack.config.schema` rewrites `schema/stack-config.schema.json` and the config reference
in README.md (between its markers); the tests fail when either is out of date.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from stack.config.model import PROJECT, StackConfig

REPO_ROOT = Path(__file__).resolve().parents[3]
SCHEMA_FILE = REPO_ROOT / "schema" / "stack-config.schema.json"
README = REPO_ROOT / "README.md"
# The marker's first words: the rest of its line (which command generates it) may name the
# module's old path, stack.schema, in a README written before it moved.
REFERENCE_START = "<!-- config-reference:start"
REFERENCE_END = "<!-- config-reference:end -->"


def stack_file_schema() -> dict[str, Any]:
    """A JSON Schema for a whole stack file: `config:` with this project's keys and aws:region."""
    model = StackConfig.model_json_schema(by_alias=True)
    definitions = model.pop("$defs", {})
    keys: dict[str, Any] = {}
    for name, prop in model["properties"].items():
        key = "aws:region" if name == "region" else f"{PROJECT}:{name}"
        keys[key] = prop
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"Pulumi stack file of the {PROJECT} project",
        "type": "object",
        "properties": {
            "config": {
                "type": "object",
                "properties": keys,
                # Other providers' keys are free; this project's unknown keys are errors.
                "propertyNames": {
                    "anyOf": [{"enum": sorted(keys)}, {"not": {"pattern": f"^{PROJECT}:"}}]
                },
            },
            "secretsprovider": {"type": "string"},
            "encryptedkey": {"type": "string"},
            "encryptionsalt": {"type": "string"},
        },
        "$defs": definitions,
    }


def _type_name(prop: dict[str, Any], definitions: dict[str, Any]) -> str:
    if "$ref" in prop:
        return "object"
    if "enum" in prop:
        return " \\| ".join(json.dumps(v) for v in prop["enum"])
    if "const" in prop:
        return json.dumps(prop["const"])
    if "anyOf" in prop:
        return " \\| ".join(_type_name(p, definitions) for p in prop["anyOf"])
    if prop.get("type") == "array":
        return f"list of {_type_name(prop.get('items', {}), definitions)}"
    if prop.get("type") == "object":
        return "map of string to string"
    return str(prop.get("type", "any"))


def _definition(prop: dict[str, Any], definitions: dict[str, Any]) -> dict[str, Any] | None:
    ref = prop.get("$ref") or prop.get("additionalProperties", {}).get("$ref")
    if ref is None:
        return None
    found: dict[str, Any] = definitions[ref.rsplit("/", 1)[-1]]
    return found


def _rows(
    schema: dict[str, Any], defaults: dict[str, Any], definitions: dict[str, Any], prefix: str
) -> list[tuple[str, str, str, str]]:
    rows = []
    for name, prop in schema.get("properties", {}).items():
        key = f"{prefix}{name}"
        default = defaults.get(name) if isinstance(defaults, dict) else None
        nested = _definition(prop, definitions)
        if nested is not None and "$ref" in prop:
            rows.extend(_rows(nested, default or {}, definitions, f"{key}."))
        elif nested is not None:
            pool_defaults = next(iter(default.values())) if default else {}
            rows.append((key, "map of name to object", json.dumps(sorted(default or {})),
                         prop.get("description", "")))
            rows.extend(_rows(nested, pool_defaults, definitions, f"{key}.<name>."))
        else:
            rows.append((key, _type_name(prop, definitions), json.dumps(default),
                         prop.get("description", "")))
    return rows


def config_reference() -> str:
    """The README's config reference: every key with its type, default and meaning."""
    schema = StackConfig.model_json_schema(by_alias=True)
    defaults = StackConfig().model_dump(by_alias=True, mode="json")
    lines = ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
    for key, type_name, default, meaning in _rows(schema, defaults, schema.get("$defs", {}), ""):
        shown = "aws:region" if key == "region" else f"{PROJECT}:{key}"
        lines.append(f"| `{shown}` | {type_name} | `{default}` | {meaning} |")
    return "\n".join(lines)


def readme_with_reference(readme: str) -> str:
    start = readme.index("-->", readme.index(REFERENCE_START)) + len("-->")
    end = readme.index(REFERENCE_END)
    return readme[:start] + "\n" + config_reference() + "\n" + readme[end:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.parse_args()
    SCHEMA_FILE.parent.mkdir(exist_ok=True)
    SCHEMA_FILE.write_text(json.dumps(stack_file_schema(), indent=2) + "\n")
    README.write_text(readme_with_reference(README.read_text()))
    print(f"wrote {SCHEMA_FILE.relative_to(REPO_ROOT)} and the config reference in README.md")


if __name__ == "__main__":
    main()
