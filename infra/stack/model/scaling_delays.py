"""How long the autoscalers take to give a queue's waiting jobs a worker: the KEDA settings the
ScaledObjects use, the Cluster Autoscaler's and the HPA's periods, and the queue-wait target
derived from them (the default of the queue-wait alert, `observability.thresholds`).

    queue wait target = reaction + scan + node ready
    reaction   = KEDA's pollingInterval (15 s) for a Deployment at minReplicas 0: activation from
                 zero is KEDA's own loop; else the HPA's sync period (15 s), which reads the list
                 length through KEDA's metrics server
    scan       = the Cluster Autoscaler's scan interval (10 s): when it sees the new pod Pending
    node ready = an EC2 instance booting, joining the cluster and starting the worker (an
                 assumption, NODE_READY_SECONDS)

That is the longest a job should wait when the stack works: the pods it needs are asked for at
the next poll and, with no room left, on a node the autoscaler adds. A p95 above it for 10
minutes means the scaling does not keep up (a Deployment at maxReplicas, a pool at maxSize,
pods that do not start). The cooldown (300 s) does not enter: it is how long pods stay after the
queue empties, not how long a job waits. Nor does the list-length target: it sets how many pods,
and a target above the concurrency makes jobs wait behind running tasks for as long as those
run, which the stack does not know; such a stack sets `queueWaitP95Seconds` per queue.
"""

from __future__ import annotations

from stack.config.model import StackConfig
from stack.config.workers import WorkerDeployment, worker_deployments

POLLING_INTERVAL_SECONDS = 15
"""How often KEDA reads the list length to wake a Deployment scaled to zero (its default is
30 s); one LLEN per poll."""

COOLDOWN_SECONDS = 300
"""After the last non-empty poll, how long KEDA waits before scaling an idle Deployment to
zero."""

HPA_SYNC_PERIOD_SECONDS = 15
"""How often the HPA controller reconciles (kube-controller-manager
`--horizontal-pod-autoscaler-sync-period`, default 15s:
https://kubernetes.io/docs/reference/command-line-tools-reference/kube-controller-manager/)."""

CLUSTER_AUTOSCALER_SCAN_SECONDS = 10
"""The Cluster Autoscaler's scan interval: the chart's default `scan-interval: 10s`
(infra/stack/data/cluster-autoscaler/values-9.59.0.yaml, line 228; the program does not set it)."""

NODE_READY_SECONDS = 180
"""An assumption: an EC2 node booting, joining the cluster and starting the worker pod ("typically
a few minutes", docs/design/autoscaling.md). Measure it on the stack and set the threshold."""


def reaction_seconds(deployment: WorkerDeployment) -> int:
    """How long until the autoscalers act on a longer list: KEDA's poll at zero, the HPA's sync above."""
    return POLLING_INTERVAL_SECONDS if deployment.spec.autoscaling.min_replicas == 0 else HPA_SYNC_PERIOD_SECONDS


def derived_queue_wait_seconds(deployment: WorkerDeployment) -> int:
    """The module's formula for one worker Deployment's queues."""
    return reaction_seconds(deployment) + CLUSTER_AUTOSCALER_SCAN_SECONDS + NODE_READY_SECONDS


def queue_wait_targets(config: StackConfig) -> dict[str, float]:
    """Every queue a worker Deployment consumes -> the p95 wait above which it alerts: the configured
    `observability.thresholds.queueWaitP95Seconds`, else derived."""
    configured = config.observability.thresholds.queue_wait_p95_seconds or {}
    return {
        queue: configured.get(queue, derived_queue_wait_seconds(deployment))
        for deployment in worker_deployments(config)
        for queue in deployment.queues
    }
