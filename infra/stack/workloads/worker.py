"""The Celery worker: its launcher's settings, the heartbeat probe, the container and the
Deployment (whose replica count belongs to the ScaledObject of queue_scaling.py)."""

from __future__ import annotations

from typing import Any

from stack.config.model import AppConfig, StackConfig, WorkerConfig
from stack.config.names import WORKER
from stack.workloads.app_config import celery_queue
from stack.workloads.pods import (
    CONFIG_MAP,
    SECRET,
    TMP_MOUNT,
    Manifest,
    container_security_context,
    env_from,
    env_list,
    RUNTIME_LAUNCHER,
    launch_command,
    metadata,
    pod_spec,
    pod_template,
    resources,
    selector_labels,
)

HEARTBEAT_MAX_AGE_SECONDS = 60

WORKER_TERMINATION_MARGIN_SECONDS = 30
"""Slack on top of the task time limit: Celery's warm shutdown lets the running task finish,
then acknowledges it and closes the broker connection."""


def worker_settings(worker: WorkerConfig, app: AppConfig | None = None) -> dict[str, str]:
    """The worker launcher's settings (service/config/launch.py says why each of its flags);
    an app's worker also gets its Celery app and the queues it consumes."""
    settings = {"WORKER_CONCURRENCY": str(worker.concurrency)}
    if app is not None:
        settings |= {"APP_CELERY": app.celery, "WORKER_QUEUES": celery_queue(app)}
    return settings


def heartbeat_command(app: AppConfig | None = None) -> list[str]:
    # The worker touches the heartbeat file; `celery inspect ping` would cost seconds of CPU per
    # probe and restart healthy workers whenever the broker blips.
    module = "config.heartbeat" if app is None else f"{RUNTIME_LAUNCHER}.heartbeat"
    return ["python", "-m", module, "--max-age", str(HEARTBEAT_MAX_AGE_SECONDS)]


def worker_termination_grace_seconds(worker: WorkerConfig) -> int:
    # SIGTERM starts Celery's warm shutdown: the running task may take up to its time limit.
    return worker.task_time_limit_seconds + WORKER_TERMINATION_MARGIN_SECONDS


def worker_probes(app: AppConfig | None = None) -> dict[str, Any]:
    def exec_probe(**timing: int) -> dict[str, Any]:
        # Starting Python and Django takes a second or two; give the probe room.
        return {"exec": {"command": heartbeat_command(app)}, "timeoutSeconds": 10, **timing}

    return {
        "startupProbe": exec_probe(periodSeconds=5, failureThreshold=36),
        "livenessProbe": exec_probe(periodSeconds=30, failureThreshold=3),
    }


def worker_container(config: StackConfig, image: str, *, config_map_name: str, secret_name: str) -> dict[str, Any]:
    worker = config.worker
    return {
        "name": WORKER,
        "image": image,
        "command": launch_command(WORKER, config.app),
        "env": env_list(worker_settings(worker, config.app)),
        "envFrom": env_from(config_map_name, secret_name),
        "resources": resources(worker.cpu_millicores, worker.memory_mib),
        "securityContext": container_security_context(),
        "volumeMounts": [dict(TMP_MOUNT)],
        **worker_probes(config.app),
    }


def worker_deployment(
    config: StackConfig,
    image: str,
    *,
    config_map_name: str = CONFIG_MAP,
    secret_name: str = SECRET,
) -> Manifest:
    """The Celery worker Deployment; its replica count belongs to KEDA's HPA (the ScaledObject)."""
    worker = config.worker
    spec = pod_spec(
        component=WORKER,
        pool_name=worker.node_pool,
        pool=config.node_pools[worker.node_pool],
        container=worker_container(config, image, config_map_name=config_map_name, secret_name=secret_name),
        termination_grace_seconds=worker_termination_grace_seconds(worker),
    )
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(WORKER, WORKER),
        "spec": {
            "selector": {"matchLabels": selector_labels(WORKER)},
            # Old workers finish their task while new ones start: never less processing power.
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "revisionHistoryLimit": 5,
            "template": pod_template(WORKER, spec),
        },
    }
