"""The Celery worker (stack/workloads/worker.py): its settings reach the command the launcher
starts, its grace period outlasts the soft-shutdown window, and its probes read the heartbeat file."""

from __future__ import annotations

from stack.config.model import StackConfig
from stack.config.names import WORKER
from tests.infra.support.manifests import find, launched, option, render


def test_celery_command_follows_config(stack_config: StackConfig) -> None:
    container = find(render(stack_config), "Deployment", WORKER)["spec"]["template"]["spec"]["containers"][0]
    command = launched(container)
    assert command[0].endswith("celery") and command[1:4] == ["--app", "config", "worker"]
    assert option(command, "--concurrency") == str(stack_config.worker.concurrency)
    assert option(command, "--prefetch-multiplier") == "1"
    assert "ports" not in container


def test_worker_grace_period_outlasts_the_soft_shutdown_window_not_the_task(stack_config: StackConfig) -> None:
    # A worker told to stop hands long tasks back after its window: its node is not held for a
    # task's time limit (tests/service/test_worker_stop.py shows the worker leaving in time).
    spec = find(render(stack_config), "Deployment", WORKER)["spec"]["template"]["spec"]
    container = spec["containers"][0]
    window = int(next(e["value"] for e in container["env"] if e["name"] == "WORKER_SOFT_SHUTDOWN_SECONDS"))
    assert 0 < window <= stack_config.worker.task_time_limit_seconds
    assert window < spec["terminationGracePeriodSeconds"] <= window + 60
    assert spec["terminationGracePeriodSeconds"] < stack_config.worker.task_time_limit_seconds


def test_worker_probes_read_the_heartbeat(stack_config: StackConfig) -> None:
    worker = find(render(stack_config), "Deployment", WORKER)["spec"]["template"]["spec"]["containers"][0]
    heartbeat = ["python", "-m", "config.heartbeat", "--max-age", "60"]
    assert worker["livenessProbe"]["exec"]["command"] == heartbeat
    assert worker["startupProbe"]["exec"]["command"] == heartbeat
    assert "readinessProbe" not in worker
    # Liveness may only start judging once startup succeeded; the startup window must be
    # long enough for the first heartbeat.
    startup = worker["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 60
