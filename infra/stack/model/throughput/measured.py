"""The measured results file: what a deployed stack's own metrics said over a window.

`make measure` (`stack.tools.measure`) writes it from the stack's Prometheus-compatible query
API; the plan and the recommender read it with `--measured PATH`. The pydantic model below is
the one definition of the file: `schema/measured-results.schema.json` is generated from it
(`python -m stack.model.throughput.measured` rewrites it; a test fails when it is out of date),
the writer validates what it writes against that JSON Schema, and the reader validates what it
reads against the same schema before the model parses it, so a hand-edited or foreign file is
refused naming each bad field.

Figures per Celery queue are those of the queue's tasks (`celery_task_*` metrics, the runtime's);
CPU per task is the thread CPU of the task (the benchmark's `cpu_s_per_job` is the same quantity:
the compression's CPU), so the two compare like for like. CPU per request is the web pods'
process CPU over the requests they served.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Annotated, Any

import jsonschema
from pydantic import Field, ValidationError

from stack.model.throughput.results import REPO_ROOT, NonNegative, StrictModel, read_json

SCHEMA = "django-eks-measured/1"
SCHEMA_FILE = REPO_ROOT / "schema" / "measured-results.schema.json"
MEASURED_DIR = REPO_ROOT / "infra" / "stack" / "data" / "measured"
"""Where `make measure` writes by default: beside the other data the plan reads, as a file one
may commit (a stack's measured figures are reviewed like the benchmark's)."""

Count = Annotated[int, Field(ge=0)]


class Window(StrictModel):
    """The time range the figures cover, in UTC (ISO 8601) and its length."""

    start: str
    end: str
    seconds: Annotated[float, Field(gt=0)]


class QueueFigures(StrictModel):
    """One Celery queue over the window."""

    queue: str
    component: str | None = Field(
        description="the worker Deployment that consumes the queue in the stack's config (None: no Deployment does)"
    )
    instance_type: str | None = Field(description="the instance type of that Deployment's node pool")
    tasks: Count = Field(description="tasks that finished (every outcome)")
    tasks_by_outcome: dict[str, Count]
    cpu_seconds: NonNegative = Field(description="thread CPU of those tasks, summed")
    cpu_seconds_per_task: NonNegative | None
    runtime_seconds_per_task: NonNegative | None = Field(description="wall time per task, mean")
    runtime_p95_seconds: NonNegative | None
    queue_wait_p95_seconds: NonNegative | None = Field(description="publish to start, 95th percentile")
    tasks_per_hour: NonNegative = Field(description="tasks over the window's length")


class WebFigures(StrictModel):
    """The web pods over the window."""

    component: str
    instance_type: str
    shape: str = Field(description="the server, its worker class and processes x threads, as the benchmark names it")
    requests: Count = Field(description="requests the app served (probes are not counted)")
    requests_by_route: dict[str, Count]
    cpu_seconds: NonNegative = Field(description="the web pods' process CPU over the window")
    cpu_seconds_per_request: NonNegative | None
    thread_cpu_seconds_per_request_by_route: dict[str, NonNegative] = Field(
        description="each route's requests' own thread CPU (django_http_request_cpu_seconds), mean: without "
        "the server's, the probes' and the scrapes' share that the process CPU per request carries"
    )
    requests_per_second: NonNegative = Field(description="requests over the window's length")


class NodePods(StrictModel):
    """Pods seen on one node during the window, by component (`app_pod_info`)."""

    node: str
    pods: dict[str, Count]


class MeasuredResults(StrictModel):
    schema_: str = Field(alias="schema", pattern=r"^django-eks-measured/1$")
    stack: str
    measured_at: str
    window: Window
    query_url: str
    instance_types: dict[str, str] = Field(description="component (web, worker, worker-<key>) -> instance type")
    web: WebFigures | None
    queues: list[QueueFigures]
    pods_per_node: list[NodePods]

    def queue(self, name: str) -> QueueFigures | None:
        return next((q for q in self.queues if q.queue == name), None)


class MeasuredError(ValueError):
    """A measured results file is missing, not JSON, or not of the schema."""


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the file, from the model (what SCHEMA_FILE holds)."""
    schema = MeasuredResults.model_json_schema(by_alias=True)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "measured-results.schema.json",
        **schema,
        "title": "Measured results of a deployed stack (make measure)",
    }


def schema_problems(document: Any) -> list[str]:
    """Every place `document` breaks the committed JSON Schema, as `path: message`."""
    schema = json.loads(SCHEMA_FILE.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    return [
        f"{'.'.join(str(p) for p in error.absolute_path) or '(root)'}: {_message(error)}"
        for error in sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.absolute_path)))
    ]


def _message(error: jsonschema.ValidationError) -> str:
    """A value that fits none of a field's alternatives (a number or null): each reason."""
    if error.context:
        # The alternative the value was meant for: the reasons other than "not of type null".
        meant = [e for e in error.context if e.validator != "type"] or list(error.context)
        return " or ".join(sorted({e.message for e in meant}))
    return error.message


def load_measured(path: Path) -> MeasuredResults:
    """The validated measured results in `path`; MeasuredError naming the file and each bad field."""
    document = read_json(path, "measured results", MeasuredError)
    problems = schema_problems(document)
    if problems:
        listed = "\n".join(f"  - {p}" for p in problems)
        raise MeasuredError(f"measured results {path} do not match {SCHEMA_FILE.name}:\n{listed}")
    try:
        return MeasuredResults.model_validate(document)
    except ValidationError as e:  # the schema and the model are one; kept for a schema file edited by hand
        listed = "\n".join(f"  - {'.'.join(map(str, i['loc']))}: {i['msg']}" for i in e.errors())
        raise MeasuredError(f"measured results {path} do not match {SCHEMA}:\n{listed}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=f"rewrite {SCHEMA_FILE.relative_to(REPO_ROOT)} from the model")
    parser.parse_args(argv)
    SCHEMA_FILE.write_text(json.dumps(json_schema(), indent=2) + "\n")
    print(f"wrote {SCHEMA_FILE.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
