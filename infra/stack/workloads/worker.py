"""The Celery workers: the launcher's settings, the heartbeat probe, the container and one
Deployment per worker Deployment of the config (`stack.config.workers`: the single `worker`, or
one per entry of `workers`), whose replica count belongs to its ScaledObject (queue_scaling.py).

A Deployment of `workers` is named `worker-<key>`; its pods keep the component `worker` (its
service account, Pod Identity role and network policy) and add the instance label, which its
selector, PDB and ScaledObject use to tell it from the others."""

from __future__ import annotations

from typing import Any

from stack.config.model import AppConfig, StackConfig, WorkerConfig
from stack.config.names import NAMESPACE, WORKER, WORKER_METRICS_PORT
from stack.config.workers import WorkerDeployment, worker_deployment as deployment_named
from stack.workloads.pods import (
    CONFIG_MAP,
    METRICS_BIND,
    METRICS_MOUNT,
    METRICS_VOLUME,
    SECRET,
    TMP_MOUNT,
    Manifest,
    container_security_context,
    env_from,
    env_list,
    RUNTIME_LAUNCHER,
    launch_command,
    labels,
    metrics_env,
    metrics_port,
    pod_spec,
    resources,
    scrape_annotations,
    selector_labels,
)

INSTANCE_LABEL = "app.kubernetes.io/instance"
"""Tells the pods of one worker Deployment of `workers` from the others' (Kubernetes'
recommended label for "a unique name identifying the instance of an application")."""

HEARTBEAT_MAX_AGE_SECONDS = 60

WORKER_SOFT_SHUTDOWN_SECONDS = 30
"""After SIGTERM, running tasks may finish within this; then the worker hands them back to the
queue and leaves (runtime/django_eks_runtime/worker_shutdown.py, docs/worker-shutdown.md)."""
WORKER_TERMINATION_MARGIN_SECONDS = 30
"""Slack on top of the soft-shutdown window: the cold shutdown stops the pool children, returns
their messages to the queue and closes the broker connection (seconds, measured)."""


def worker_soft_shutdown_seconds(worker: WorkerConfig) -> int:
    # A task past its time limit is killed anyway: the window never needs to be longer.
    return min(WORKER_SOFT_SHUTDOWN_SECONDS, worker.task_time_limit_seconds)


def worker_settings(worker: WorkerConfig) -> dict[str, str]:
    """The worker launcher's settings (runtime/django_eks_runtime/launch.py says why each of its flags)."""
    return {"WORKER_CONCURRENCY": str(worker.concurrency),
            "WORKER_SOFT_SHUTDOWN_SECONDS": str(worker_soft_shutdown_seconds(worker))}


def deployment_settings(config: StackConfig, deployment: WorkerDeployment) -> dict[str, str]:
    """A worker Deployment's own settings: a Deployment of `workers` adds its queues and its
    task time limit, an app's worker its Celery app and queues. They override the ConfigMap's: a
    container's `env` takes precedence over its `envFrom` ("Values defined by an Env with a
    duplicate key will take precedence", Kubernetes API reference, Container.envFrom)."""
    settings = worker_settings(deployment.spec)
    if config.app is not None:
        settings |= {"APP_CELERY": config.app.celery}
    if deployment.from_map or config.app is not None:
        settings |= {"WORKER_QUEUES": ",".join(deployment.queues)}
    if deployment.from_map:
        settings |= {"CELERY_TASK_TIME_LIMIT": str(deployment.spec.task_time_limit_seconds)}
    return settings


def worker_labels(deployment: WorkerDeployment) -> dict[str, str]:
    """The labels of a worker Deployment's objects and pods."""
    return {**labels(WORKER), **instance_label(deployment)}


def worker_selector(deployment: WorkerDeployment) -> dict[str, str]:
    """The selector of a worker Deployment's pods (immutable: only what never changes)."""
    return {**selector_labels(WORKER), **instance_label(deployment)}


def instance_label(deployment: WorkerDeployment) -> dict[str, str]:
    return {INSTANCE_LABEL: deployment.name} if deployment.from_map else {}


def heartbeat_command(app: AppConfig | None = None) -> list[str]:
    # The worker touches the heartbeat file; `celery inspect ping` would cost seconds of CPU per
    # probe and restart healthy workers whenever the broker blips.
    module = "config.heartbeat" if app is None else f"{RUNTIME_LAUNCHER}.heartbeat"
    return ["python", "-m", module, "--max-age", str(HEARTBEAT_MAX_AGE_SECONDS)]


def worker_termination_grace_seconds(worker: WorkerConfig) -> int:
    # SIGTERM starts Celery's warm shutdown, bounded by the soft-shutdown window: the pod's node
    # is held for the window, not for a task's time limit.
    return worker_soft_shutdown_seconds(worker) + WORKER_TERMINATION_MARGIN_SECONDS


def worker_probes(app: AppConfig | None = None) -> dict[str, Any]:
    def exec_probe(**timing: int) -> dict[str, Any]:
        # Starting Python and Django takes a second or two; give the probe room.
        return {"exec": {"command": heartbeat_command(app)}, "timeoutSeconds": 10, **timing}

    return {
        "startupProbe": exec_probe(periodSeconds=5, failureThreshold=36),
        "livenessProbe": exec_probe(periodSeconds=30, failureThreshold=3),
    }


def worker_container(
    config: StackConfig, deployment: WorkerDeployment, image: str, *, config_map_name: str, secret_name: str
) -> dict[str, Any]:
    worker = deployment.spec
    return {
        "name": WORKER,
        "image": image,
        "command": launch_command(WORKER, config.app),
        "env": [
            *env_list(deployment_settings(config, deployment)),
            # APP_COMPONENT is the Deployment's name: `worker`, or `worker-<key>` for `workers`.
            *metrics_env(deployment.name, (METRICS_BIND, f"0.0.0.0:{WORKER_METRICS_PORT}")),
        ],
        "ports": [metrics_port(WORKER_METRICS_PORT)],
        "envFrom": env_from(config_map_name, secret_name),
        "resources": resources(worker.cpu_millicores, worker.memory_mib),
        "securityContext": container_security_context(),
        "volumeMounts": [dict(TMP_MOUNT), dict(METRICS_MOUNT)],
        **worker_probes(config.app),
    }


def worker_deployment(
    config: StackConfig,
    image: str,
    *,
    config_map_name: str = CONFIG_MAP,
    secret_name: str = SECRET,
    name: str = WORKER,
) -> Manifest:
    """The worker Deployment `name` (default: the single `worker`); its replica count belongs
    to KEDA's HPA (the ScaledObject)."""
    deployment = deployment_named(config, name)
    worker = deployment.spec
    spec = pod_spec(
        component=WORKER,
        pool_name=worker.node_pool,
        pool=config.node_pools[worker.node_pool],
        container=worker_container(config, deployment, image, config_map_name=config_map_name, secret_name=secret_name),
        termination_grace_seconds=worker_termination_grace_seconds(worker),
    )
    spec["volumes"].append(dict(METRICS_VOLUME))
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": deployment.name, "namespace": NAMESPACE, "labels": worker_labels(deployment)},
        "spec": {
            "selector": {"matchLabels": worker_selector(deployment)},
            # Old workers finish (or hand back) their task while new ones start: never less
            # processing power.
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "revisionHistoryLimit": 5,
            "template": {
                "metadata": {"labels": worker_labels(deployment), "annotations": scrape_annotations(WORKER_METRICS_PORT)},
                "spec": spec,
            },
        },
    }
