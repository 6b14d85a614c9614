"""The worker Deployments of a stack (stack/config/workers.py): a single `worker` keeps its names,
a `workers` map gives one Deployment per entry, and the rules across entries name their key."""

from __future__ import annotations

from typing import Any

import pytest

from stack.config.rules import StackConfigError, parse_stack_config
from stack.config.workers import jobs_deployment, longest_task_seconds, worker_deployments
from tests.infra.support.stack_files import project_config


def queues_config(**edits: Any) -> dict[str, Any]:
    """The exp-queues stack file, with top-level sections replaced by `edits`."""
    return {**project_config("exp-queues"), **edits}


def problems(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(StackConfigError) as caught:
        parse_stack_config(raw)
    return [str(p) for p in caught.value.problems]


def test_a_single_worker_is_the_deployment_named_worker() -> None:
    (only,) = worker_deployments(parse_stack_config(project_config("dev")))
    assert (only.key, only.name, only.queues, only.from_map) == ("worker", "worker", ("jobs",), False)


def test_each_entry_of_workers_is_a_deployment_of_its_own() -> None:
    config = parse_stack_config(project_config("exp-queues"))
    found = [(d.key, d.name, d.queues, d.spec.node_pool) for d in worker_deployments(config)]
    assert found == [
        ("workers.cpu", "worker-cpu", ("jobs",), "compute"),
        ("workers.io", "worker-io", ("io", "notifications"), "general"),
    ]
    assert jobs_deployment(config).name == "worker-cpu"
    assert longest_task_seconds(config) == 300  # cpu's default; io sets 120


def test_worker_and_workers_together_are_refused_naming_the_key() -> None:
    raw = queues_config(worker={"concurrency": 1})
    assert any(p.startswith("workers: is set together with worker") for p in problems(raw))


def test_a_queue_served_by_two_deployments_is_refused() -> None:
    raw = queues_config()
    raw["workers"] = {**raw["workers"], "io": {**raw["workers"]["io"], "queues": ["io", "jobs"]}}
    assert "workers.io.queues: queue 'jobs' is already served by workers.cpu" in " ".join(problems(raw))


def test_the_jobs_queue_must_be_served() -> None:
    raw = queues_config()
    raw["workers"] = {"io": raw["workers"]["io"]}
    assert any(p.startswith("workers: no worker Deployment consumes the queue 'jobs'") for p in problems(raw))


def test_the_visibility_timeout_is_one_value_above_every_task_limit() -> None:
    raw = queues_config()
    io = {**raw["workers"]["io"], "visibilityTimeoutSeconds": 200}
    found = problems({**raw, "workers": {**raw["workers"], "io": io}})
    assert any(p.startswith("workers: visibilityTimeoutSeconds differs between worker Deployments") for p in found)
    # 200 exceeds io's own 120 s limit but not cpu's 300 s: any worker restores any queue's messages.
    assert any(p.startswith("workers.io.visibilityTimeoutSeconds: 200 must exceed the longest") for p in found)


@pytest.mark.parametrize(
    ("edit", "path", "message"),
    [
        ({"workers": {"Big_Name": {"queues": ["jobs"]}}}, "workers.Big_Name", "lowercase letters"),
        ({"workers": {"cpu": {"queues": []}}}, "workers.cpu.queues", "at least 1 item"),
        ({"workers": {"cpu": {"queues": ["jobs,io"]}}}, "workers.cpu.queues.0", "is not a queue name"),
        ({"workers": {"cpu": {"queues": ["jobs", "jobs"]}}}, "workers.cpu.queues", "jobs listed more than once"),
        ({"workers": {"cpu": {"queues": ["jobs"], "nodePool": "gpu"}}}, "workers.cpu.nodePool", "'gpu', which is not configured"),
        ({"workers": {"cpu": {"queues": ["jobs"], "replicas": 9}}}, "workers.cpu.replicas", "within autoscaling.minReplicas"),
        ({"beat": {"nodePool": "gpu"}}, "beat.nodePool", "'gpu', which is not configured"),
        ({"beat": {"replicas": 2}}, "beat.replicas", "unknown key"),
        ({"cronJobs": {"nightly": {"schedule": "every night", "command": ["x"]}}}, "cronJobs.nightly.schedule", "not a cron schedule"),
        ({"cronJobs": {"nightly": {"schedule": "@daily", "command": []}}}, "cronJobs.nightly.command", "at least 1 item"),
        ({"cronJobs": {"nightly": {"schedule": "@daily", "command": ["x"], "nodePool": "gpu"}}}, "cronJobs.nightly.nodePool", "not configured"),
    ],
)
def test_bad_entries_name_their_key(edit: dict[str, Any], path: str, message: str) -> None:
    raw = {**project_config("dev"), **edit}
    if "workers" in edit:
        raw.pop("worker", None)  # not both
    found = problems(raw)
    assert any(p.startswith(f"{path}: ") and message in p for p in found), found


def test_the_pixel_memory_rule_holds_only_the_deployment_of_the_jobs_queue() -> None:
    raw = queues_config()
    # 8 children on 40 M pixel images would need about 4 GiB; io's tasks are not images.
    assert parse_stack_config(raw).workers["io"].memory_mib == 768
    cpu = {**raw["workers"]["cpu"], "concurrency": 2, "autoscaling": {**raw["workers"]["cpu"]["autoscaling"], "queueLengthPerReplica": 2}}
    found = problems({**raw, "workers": {**raw["workers"], "cpu": cpu}})
    assert any(p.startswith("workers.cpu.memoryMib: 768 MiB cannot hold workers.cpu.concurrency 2") for p in found)


def test_cron_schedules_and_macros_are_accepted() -> None:
    for schedule in ("*/15 * * * *", "0 3 * * 1-5", "@hourly", "17 3 1,15 * *"):
        raw = {**project_config("dev"), "cronJobs": {"x": {"schedule": schedule, "command": ["clearsessions"]}}}
        assert parse_stack_config(raw).cron_jobs["x"].schedule == schedule
