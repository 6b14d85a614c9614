"""The Celery worker (stack/workloads/worker.py): its settings reach the command the launcher
starts, its grace period outlasts a task, and its probes read the heartbeat file."""

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


def test_worker_grace_period_outlasts_the_task_time_limit(stack_config: StackConfig) -> None:
    spec = find(render(stack_config), "Deployment", WORKER)["spec"]["template"]["spec"]
    assert spec["terminationGracePeriodSeconds"] > stack_config.worker.task_time_limit_seconds


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
