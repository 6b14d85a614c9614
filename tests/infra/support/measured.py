"""Measured results files (`make measure`'s format) for the plan's and the recommender's tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from stack.config.loader import config_from_stack_file
from stack.model.throughput.measured import SCHEMA
from stack.model.throughput.pods import web_shape
from stack.tools.measure.collect import instance_types


def measured_document(
    stack: str, *, task_cpu_s: float | None, request_cpu_s: float | None, tasks: int = 10, requests: int = 100
) -> dict[str, Any]:
    """A file as `make measure` writes it for `stack` over an hour (figures chosen by the test)."""
    config = config_from_stack_file(stack)
    types = instance_types(config)
    queues = []
    if task_cpu_s is not None:
        queues.append({
            "queue": "jobs", "component": "worker", "instance_type": types["worker"], "tasks": tasks,
            "tasks_by_outcome": {"succeeded": tasks}, "cpu_seconds": task_cpu_s * tasks,
            "cpu_seconds_per_task": task_cpu_s, "runtime_seconds_per_task": task_cpu_s * 1.1,
            "runtime_p95_seconds": task_cpu_s * 1.5, "queue_wait_p95_seconds": 0.2, "tasks_per_hour": float(tasks),
        })
    web = None
    if request_cpu_s is not None:
        web = {
            "component": "web", "instance_type": types["web"], "shape": web_shape(config).describe(),
            "requests": requests, "requests_by_route": {"api/jobs/<uuid:job_id>": requests},
            "cpu_seconds": request_cpu_s * requests, "cpu_seconds_per_request": request_cpu_s,
            "thread_cpu_seconds_per_request_by_route": {"api/jobs/<uuid:job_id>": request_cpu_s * 0.8},
            "requests_per_second": requests / 3600,
        }
    return {
        "schema": SCHEMA, "stack": stack, "measured_at": "2026-12-02T14:00:00Z",
        "window": {"start": "2026-12-02T13:00:00Z", "end": "2026-12-02T14:00:00Z", "seconds": 3600.0},
        "query_url": "http://127.0.0.1:9090", "instance_types": types, "web": web, "queues": queues,
        "pods_per_node": [{"node": "ip-10-0-1-2.ec2.internal", "pods": {"web": 1, "worker": 1}}],
    }


def write_measured(path: Path, document: dict[str, Any]) -> Path:
    path.write_text(json.dumps(document, indent=2))
    return path
