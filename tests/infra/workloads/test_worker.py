"""The Celery workers (stack/workloads/worker.py): each worker Deployment's settings reach the
command the launcher starts, its grace period outlasts the soft-shutdown window, and its probes
read the heartbeat file."""

from __future__ import annotations

from stack.config.model import StackConfig
from stack.config.workers import worker_deployments
from tests.infra.support.manifests import find, launched, literal_env, option, render


def test_celery_command_follows_config(stack_config: StackConfig) -> None:
    manifests = render(stack_config)
    for d in worker_deployments(stack_config):
        container = find(manifests, "Deployment", d.name)["spec"]["template"]["spec"]["containers"][0]
        command = launched(container)
        assert command[0].endswith("celery") and command[1:5] == ["--app", "config", "--quiet", "worker"]
        assert option(command, "--concurrency") == str(d.spec.concurrency)
        assert option(command, "--prefetch-multiplier") == "1"
        # Its one port is the metrics server's (METRICS_BIND), which nothing but the collector reaches.
        assert container["ports"] == [{"name": "metrics", "containerPort": 9100, "protocol": "TCP"}]
        assert literal_env(container)["METRICS_BIND"] == "0.0.0.0:9100"


def test_worker_grace_period_outlasts_the_soft_shutdown_window_not_the_task(stack_config: StackConfig) -> None:
    # A worker told to stop hands long tasks back after its window: its node is not held for a
    # task's time limit (tests/service/test_worker_stop.py shows the worker leaving in time).
    manifests = render(stack_config)
    for d in worker_deployments(stack_config):
        spec = find(manifests, "Deployment", d.name)["spec"]["template"]["spec"]
        container = spec["containers"][0]
        window = int(next(e["value"] for e in container["env"] if e["name"] == "WORKER_SOFT_SHUTDOWN_SECONDS"))
        assert 0 < window <= d.spec.task_time_limit_seconds
        assert window < spec["terminationGracePeriodSeconds"] <= window + 60


def test_worker_probes_read_the_heartbeat(stack_config: StackConfig) -> None:
    manifests = render(stack_config)
    for d in worker_deployments(stack_config):
        worker = find(manifests, "Deployment", d.name)["spec"]["template"]["spec"]["containers"][0]
        heartbeat = ["python", "-m", "config.heartbeat", "--max-age", "60"]
        assert worker["livenessProbe"]["exec"]["command"] == heartbeat
        assert worker["startupProbe"]["exec"]["command"] == heartbeat
        assert "readinessProbe" not in worker
        # Liveness may only start judging once startup succeeded; the startup window must be
        # long enough for the first heartbeat.
        startup = worker["startupProbe"]
        assert startup["periodSeconds"] * startup["failureThreshold"] >= 60
