"""The OpenAPI schemas of bundled CustomResourceDefinitions, strict: unknown fields are errors."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import yaml


def strict(schema: Any) -> Any:
    """The CRD schema with unknown fields rejected, as the API server prunes them silently."""
    if isinstance(schema, dict):
        schema = {k: strict(v) for k, v in schema.items()}
        if schema.get("type") == "object" and "properties" in schema and "additionalProperties" not in schema:
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    return schema


@functools.cache
def crd_schemas(*files: Path) -> dict[tuple[str, str], Any]:
    """(apiVersion, kind) -> the strict schema, for every CRD in `files` (YAML, one or more
    documents each)."""
    schemas = {}
    for path in files:
        for crd in yaml.safe_load_all(path.read_text()):
            if not crd:
                continue
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                schema = strict(version["schema"]["openAPIV3Schema"])
                # metadata is validated by the API server's ObjectMeta, not by the CRD.
                schema["properties"]["metadata"] = {"type": "object"}
                schemas[(f"{group}/{version['name']}", kind)] = schema
    return schemas
