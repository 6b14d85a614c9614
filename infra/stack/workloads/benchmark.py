"""The service's benchmark as a Kubernetes Job on one node pool (`benchmark.nodePool`).

The image carries the benchmark (`python -m benchmarks run`, run from the image's working
directory). In the cluster it reads the stack's RDS and ElastiCache through `DATABASE_URL`
and `REDIS_URL` from the app Secret, like the workers, and records the pool's instance type
(`BENCH_INSTANCE_TYPE`) in its results, so that `make plan --results` uses the figures for
that type instead of an assumption. The results JSON ends the Job's log, after
`RESULTS_MARKER` (`kubectl logs job/<name>`).

The Job asks for everything a node of the pool has left after its DaemonSets, so it runs
alone on a node (the benchmark pins its "pods" to CPUs and would measure its neighbours
otherwise), and waits Pending until the pool has an empty node.
"""

from __future__ import annotations

import hashlib
from typing import Any

from stack.model.nodes import node_allocatable, room_after_daemonsets
from stack.model.pod_requests import cluster_pods
from stack.config.model import StackConfig
from stack.config.names import NAMESPACE, WORKER
from stack.platform.node_pools import node_placement
from stack.workloads import pods

BENCHMARK = "benchmark"
DEADLINE_SECONDS = 3600
"""The full run takes minutes; an hour bounds a run that hangs on an unreachable database."""


RESULTS_MARKER = "--- django-eks-bench results ---"
"""The line after which the Job's log holds the results JSON, and nothing else."""


def benchmark_settings(config: StackConfig, instance_type: str) -> dict[str, str]:
    """The bench launcher's settings (service/config/launch.py).

    A container's log interleaves stdout and stderr: with `BENCH_RESULTS_MARKER` the launcher
    sends the run's own output to stderr and prints the results once, last, after the marker.
    """
    return {
        "BENCH_FAST": "true" if config.benchmark.fast else "false",
        "BENCH_RESULTS_MARKER": RESULTS_MARKER,
        # Not a secret: the instance type the results are recorded under.
        "BENCH_INSTANCE_TYPE": instance_type,
    }


def benchmark_job_name(config: StackConfig, image: str) -> str:
    """One Job per image, pool and mode: changing any of them runs the benchmark again."""
    pool = config.benchmark.node_pool or ""
    key = f"{image}|{pool}|{config.benchmark.fast}"
    return f"{BENCHMARK}-{pool}-{hashlib.sha256(key.encode()).hexdigest()[:8]}"[:63]


def benchmark_job(
    config: StackConfig,
    image: str,
    *,
    config_map_name: str = pods.CONFIG_MAP,
    secret_name: str = pods.SECRET,
) -> pods.Manifest:
    """The benchmark Job on `benchmark.nodePool` (ValueError when it is unset)."""
    pool_name = config.benchmark.node_pool
    if pool_name is None:
        raise ValueError("benchmark.nodePool is unset: the stack runs no benchmark Job")
    pool = config.node_pools[pool_name]
    room = room_after_daemonsets(node_allocatable(pool.instance_type), cluster_pods(config.observability).daemonsets)
    container = {
        "name": BENCHMARK,
        "image": image,
        "command": pods.launch_command("bench"),
        "envFrom": pods.env_from(config_map_name, secret_name),
        "env": pods.env_list(benchmark_settings(config, pool.instance_type)),
        "resources": pods.resources(room.cpu_millicores, room.memory_mib),
        "securityContext": pods.container_security_context(),
        "volumeMounts": [dict(pods.TMP_MOUNT)],
    }
    spec: dict[str, Any] = {
        # The worker's account: the benchmark needs what a worker needs (no Kubernetes API).
        "serviceAccountName": WORKER,
        "automountServiceAccountToken": False,
        "securityContext": pods.pod_security_context(),
        "terminationGracePeriodSeconds": 30,
        "restartPolicy": "Never",
        "containers": [container],
        "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "2Gi"}}],
        **node_placement(pool_name, pool),
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": benchmark_job_name(config, image),
            "namespace": NAMESPACE,
            "labels": pods.labels(BENCHMARK),
            "annotations": {
                # `pulumi up` does not wait for a run of several minutes; the results are read
                # from the Job's log.
                "pulumi.com/skipAwait": "true",
            },
        },
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": DEADLINE_SECONDS,
            "template": {"metadata": {"labels": pods.labels(BENCHMARK)}, "spec": spec},
        },
    }


def benchmark_manifests(config: StackConfig, image: str) -> list[pods.Manifest]:
    """The benchmark Job when the stack runs one, else nothing."""
    return [] if config.benchmark.node_pool is None else [benchmark_job(config, image)]


def benchmark_problems(config: StackConfig, nodes_needed: int) -> list[str]:
    """Warnings about the Job's node: it needs one more node than the pool's pods use.

    `nodes_needed` is what the pool's pods need at the configured replicas (the plan's
    capacity model). The Job runs only on a node with nothing but DaemonSets on it.
    """
    pool_name = config.benchmark.node_pool
    if pool_name is None:
        return []
    pool = config.node_pools[pool_name]
    wanted = nodes_needed + 1
    if wanted <= pool.max_size:
        return [
            f"benchmark.nodePool: the benchmark Job claims a whole {pool.instance_type} node of "
            f"nodePools.{pool_name} while it runs ({wanted} nodes with the pool's pods; "
            f"desiredSize {pool.desired_size}); it is not in the monthly cost"
        ]
    return [
        f"benchmark.nodePool: the benchmark Job needs a {pool.instance_type} node of its own, but the "
        f"pool's pods need {nodes_needed} and nodePools.{pool_name}.maxSize is {pool.max_size}: "
        "the Job stays Pending"
    ]
