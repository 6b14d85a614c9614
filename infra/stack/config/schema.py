"""The JSON Schema of a Pulumi.<stack>.yaml file and the config reference, from the model.

`python -m stack.config.schema` rewrites `schema/stack-config.schema.json` and
`docs/config-reference.md`; the tests fail when either is out of date.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from stack.config.model import PROJECT, StackConfig

REPO_ROOT = Path(__file__).resolve().parents[3]
SCHEMA_FILE = REPO_ROOT / "schema" / "stack-config.schema.json"
REFERENCE_FILE = REPO_ROOT / "docs" / "config-reference.md"
# The command that regenerates both files: this module, under whatever package it lives in.
COMMAND = f"python -m {__spec__.name if __spec__ is not None else __name__}"

REFERENCE_INTRO = """\
Stack files set these keys (camelCase; validated before any resource is registered, each
error naming its key path, e.g. `nodePools.workers.maxSize: maxSize 1 is below desiredSize 2`).
Editors validate stack files with `schema/stack-config.schema.json` (the stack files carry a
`yaml-language-server` modeline)."""

REFERENCE_RULES = """\
Rules across keys: `web.nodePool` and `worker.nodePool` name configured pools;
`web.keepAliveSeconds` > `loadBalancer.idleTimeoutSeconds` (else the ALB reuses connections
the web server closed: intermittent 502s; gunicorn's `--keep-alive`, uWSGI's `--http-keepalive`,
granian's `--http1-header-read-timeout`); with `web.server: granian`, `web.keepAliveSeconds` <= 60
(the most granian takes);
with `web.server: uwsgi`, `web.timeoutSeconds` (uWSGI's `--harakiri`) >=
`loadBalancer.idleTimeoutSeconds` (else requests the ALB still waits for are killed);
`worker.visibilityTimeoutSeconds` > `worker.taskTimeLimitSeconds` (else a long task is
delivered twice); `worker.autoscaling.queueLengthPerReplica` a multiple of
`worker.concurrency`; replicas within their autoscaling bounds; `web.memoryMib` and
`worker.memoryMib` hold the web server's processes with an upload of the largest size on every
request thread and `jobs.uploadsPerWebPod` being stored, and the largest image (`jobs.maxPixels`)
at `worker.concurrency` (`infra/stack/config/memory.py`; e.g. `worker.memoryMib: 512 MiB cannot hold
worker.concurrency 1 job(s) of jobs.maxPixels 40000000: needs 603 MiB; ...`), and
`jobs.uploadsPerWebPod` is a multiple of `web.gunicornWorkers` (the web server's processes:
gunicorn's and granian's `--workers`, uWSGI's `--processes`); `reconciler.*` periods and
thresholds reach the CronJob and, through the ConfigMap, the workers (which enforce
`maxAttempts` too); at least one pool without a NoSchedule/NoExecute taint for system pods;
instance types from `infra/stack/data/instance-catalog.csv`.

With `workers` (`infra/stack/config/workers.py`): not together with `worker`; each entry's
`nodePool` a configured pool and its replicas within its bounds; a queue in one entry only; the
same `visibilityTimeoutSeconds` in every entry, above the longest `taskTimeLimitSeconds` of any
entry (every worker restores every queue's unacknowledged messages); with the demo, one entry
consumes the `jobs` queue, and its `memoryMib` holds the largest image at its `concurrency`. `beat.nodePool`
and `cronJobs.<name>.nodePool`, when set, name configured pools.

With an `app` section (your Django + Celery project, [docs/your-app.md](your-app.md)) the demo's
settings are refused, each error naming its key: `jobs`, `reconciler`, `benchmark` and
`web.loadTestEndpoint` configure the demo service alone (its pixel limit and upload slots, its job
reconciler CronJob, its benchmark Job, its `/api/io`), and the memory rules above, which model
the demo's uploads and images, do not apply. `app.env` and `app.secrets` may not set a variable
the platform sets (`DATABASE_URL`, `REDIS_URL`, `DJANGO_SETTINGS_MODULE`, `DJANGO_SECRET_KEY`, the
other `DJANGO_*` it sets, `PYTHONUNBUFFERED`, and any `APP_*`, `WEB_*`, `WORKER_*`, `PROBE_*`,
`CELERY_*`, `AWS_*`), nor one name in both; each `app.secrets` value must be `secure:` in the
stack file (`pulumi config set --secret --path app.secrets.<NAME> <value>`)."""


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
    if prop.get("type") == "object" and "anyOf" in prop.get("additionalProperties", {}):
        return "map of name to `secure:` value"
    if prop.get("type") == "object":
        values = prop.get("additionalProperties", {})
        return f"map of string to {_type_name(values, definitions) if values else 'string'}"
    return str(prop.get("type", "any"))


def _definition(prop: dict[str, Any], definitions: dict[str, Any]) -> dict[str, Any] | None:
    # A section, a map of sections, or an optional section (anyOf the section and null).
    optional = [p["$ref"] for p in prop.get("anyOf", []) if "$ref" in p]
    ref = prop.get("$ref") or prop.get("additionalProperties", {}).get("$ref") or next(iter(optional), None)
    if ref is None:
        return None
    found: dict[str, Any] = definitions[ref.rsplit("/", 1)[-1]]
    return found


def _rows(
    schema: dict[str, Any], defaults: dict[str, Any], definitions: dict[str, Any], prefix: str
) -> list[tuple[str, str, str, str]]:
    rows = []
    required = set(schema.get("required", ()))
    for name, prop in schema.get("properties", {}).items():
        key = f"{prefix}{name}"
        # The stack's default, else (a section no stack has by default) the model's own.
        default = defaults.get(name, prop.get("default")) if isinstance(defaults, dict) else None
        shown = "(required)" if name in required else json.dumps(default)
        nested = _definition(prop, definitions)
        optional = [p for p in prop.get("anyOf", []) if "$ref" in p]
        if nested is None and optional:
            # An optional section (`app`): its row, then its keys.
            rows.append((key, "optional section", json.dumps(default), prop.get("description", "")))
            section = _definition(optional[0], definitions) or {}
            section_defaults = {
                n: "(required)" if n in section.get("required", ()) else p.get("default")
                for n, p in section.get("properties", {}).items()
            }
            rows.extend(_rows(section, section_defaults, definitions, f"{key}."))
        elif nested is not None and "$ref" in prop:
            rows.extend(_rows(nested, default or {}, definitions, f"{key}."))
        elif nested is not None and "anyOf" in prop:
            rows.append((key, "object \\| null", shown, prop.get("description", "")))
            rows.extend(_rows(nested, default or {}, definitions, f"{key}."))
        elif nested is not None:
            pool_defaults = next(iter(default.values())) if default else {}
            rows.append((key, "map of name to object", json.dumps(sorted(default or {})),
                         prop.get("description", "")))
            rows.extend(_rows(nested, pool_defaults, definitions, f"{key}.<name>."))
        else:
            rows.append((key, _type_name(prop, definitions), shown, prop.get("description", "")))
    return rows


def config_reference() -> str:
    """The config reference's table: every key with its type, default and meaning."""
    schema = StackConfig.model_json_schema(by_alias=True)
    defaults = StackConfig().model_dump(by_alias=True, mode="json")
    lines = ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
    for key, type_name, default, meaning in _rows(schema, defaults, schema.get("$defs", {}), ""):
        shown = "aws:region" if key == "region" else f"{PROJECT}:{key}"
        lines.append(f"| `{shown}` | {type_name} | `{default}` | {meaning} |")
    return "\n".join(lines)


def config_reference_document() -> str:
    """docs/config-reference.md: the keys and the rules across them, marked as generated."""
    return "\n".join([
        f"<!-- Generated from the config model by `{COMMAND}`: do not edit by hand;",
        "     change the model's field descriptions, then run that command. -->",
        "",
        "# Config reference",
        "",
        REFERENCE_INTRO,
        "",
        config_reference(),
        "",
        "## Rules across keys",
        "",
        REFERENCE_RULES,
        "",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.parse_args()
    SCHEMA_FILE.parent.mkdir(exist_ok=True)
    SCHEMA_FILE.write_text(json.dumps(stack_file_schema(), indent=2) + "\n")
    REFERENCE_FILE.parent.mkdir(exist_ok=True)
    REFERENCE_FILE.write_text(config_reference_document())
    print(f"wrote {SCHEMA_FILE.relative_to(REPO_ROOT)} and {REFERENCE_FILE.relative_to(REPO_ROOT)}")


if __name__ == "__main__":
    main()
