"""The worker Deployments a stack runs, from `worker` (one, the demo's) or `workers` (one per
queue or group of queues), and the rules that tie them to the rest of the config.

Everything downstream (the manifests, capacity, cost, throughput, the plan) iterates over
`worker_deployments`, so a single `worker` and a map of `workers` go through the same code,
and `worker` keeps its names: the Deployment, ScaledObject, HPA and PDB `worker`.
"""

from __future__ import annotations

from dataclasses import dataclass

from stack.config.model import StackConfig, WorkerConfig
from stack.config.names import APP_DEFAULT_QUEUE, DEFAULT_QUEUE, WORKER


@dataclass(frozen=True)
class WorkerDeployment:
    """One worker Deployment: where it is configured, its Kubernetes name, its queues, its shape."""

    key: str
    """The config path of its section: `worker`, or `workers.<name>`."""
    name: str
    """The name of its Deployment, ScaledObject, HPA and PDB: `worker`, or `worker-<name>`."""
    queues: tuple[str, ...]
    spec: WorkerConfig
    from_map: bool
    """Configured under `workers` (its pods get WORKER_QUEUES and an instance label)."""


def uses_worker_map(config: StackConfig) -> bool:
    return bool(config.workers)


def single_worker_queue(config: StackConfig) -> str:
    """The queue of a single `worker`: the demo's jobs queue, or an app's Celery default queue."""
    return DEFAULT_QUEUE if config.app is None else APP_DEFAULT_QUEUE


def worker_deployments(config: StackConfig) -> list[WorkerDeployment]:
    """The stack's worker Deployments, in the stack file's order."""
    if not config.workers:
        return [WorkerDeployment(WORKER, WORKER, (single_worker_queue(config),), config.worker, from_map=False)]
    return [
        WorkerDeployment(f"workers.{key}", f"{WORKER}-{key}", tuple(spec.queues), spec, from_map=True)
        for key, spec in config.workers.items()
    ]


def worker_deployment(config: StackConfig, name: str) -> WorkerDeployment:
    """The worker Deployment of Kubernetes name `name`."""
    return next(d for d in worker_deployments(config) if d.name == name)


def jobs_deployment(config: StackConfig) -> WorkerDeployment:
    """The worker Deployment that consumes the service's jobs queue (else the first)."""
    deployments = worker_deployments(config)
    return next((d for d in deployments if DEFAULT_QUEUE in d.queues), deployments[0])


def longest_task_seconds(config: StackConfig) -> int:
    """The longest task time limit of any worker Deployment."""
    return max(d.spec.task_time_limit_seconds for d in worker_deployments(config))


def visibility_timeout_seconds(config: StackConfig) -> int:
    """The broker's visibility timeout (the rules make every Deployment's the same)."""
    return worker_deployments(config)[0].spec.visibility_timeout_seconds


def worker_map_problems(config: StackConfig) -> list[tuple[str, str]]:
    """(key path, message) for each rule of `workers` no single entry can check alone."""
    if not config.workers:
        return []
    problems: list[tuple[str, str]] = []
    if "worker" in config.model_fields_set:
        problems.append((
            "workers",
            "is set together with worker; configure the worker Deployments either as one `worker` "
            "or as the `workers` map (move the worker section into an entry of workers)",
        ))
    served: dict[str, str] = {}
    for key, spec in config.workers.items():
        for queue in spec.queues:
            # Two Deployments on one list would each be scaled by KEDA for the whole backlog
            # (each ScaledObject reads the same LLEN), doubling the pods the queue asks for.
            if queue in served:
                problems.append((
                    f"workers.{key}.queues",
                    f"queue {queue!r} is already served by workers.{served[queue]}; a queue belongs "
                    "to one worker Deployment, whose ScaledObject alone follows its length",
                ))
            else:
                served[queue] = key
    deployments = worker_deployments(config)
    # Every worker restores every queue's expired unacked messages: kombu's Redis transport keeps
    # them in one `unacked` hash and `unacked_index` sorted set per database, and a worker's
    # QoS.restore_visible moves back all entries older than its own visibility_timeout,
    # whatever their queue (kombu 5.x kombu/transport/redis.py, QoS.restore_visible). So the
    # timeout is one value for the broker and must exceed the longest task anywhere.
    timeouts = {d.spec.visibility_timeout_seconds for d in deployments}
    if len(timeouts) > 1:
        problems.append((
            "workers",
            "visibilityTimeoutSeconds differs between worker Deployments "
            f"({', '.join(f'{d.key}: {d.spec.visibility_timeout_seconds}' for d in deployments)}); "
            "the workers share one set of unacknowledged messages, restored by whichever worker "
            "looks first, so set the same value in every entry",
        ))
    longest = longest_task_seconds(config)
    for d in deployments:
        if d.spec.visibility_timeout_seconds <= longest:
            problems.append((
                f"{d.key}.visibilityTimeoutSeconds",
                f"{d.spec.visibility_timeout_seconds} must exceed the longest taskTimeLimitSeconds "
                f"of any worker Deployment ({longest}): any worker restores any queue's unacknowledged "
                "messages, so a shorter timeout delivers a running task twice",
            ))
    if config.app is None and not any(DEFAULT_QUEUE in d.queues for d in deployments):
        problems.append((
            "workers",
            f"no worker Deployment consumes the queue {DEFAULT_QUEUE!r}, where the service sends its "
            "jobs; list it in the queues of one entry",
        ))
    return problems
