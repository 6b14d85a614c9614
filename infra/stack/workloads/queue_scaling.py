"""The worker Deployment scales on the length of its Celery queue (a KEDA ScaledObject).

What KEDA's Redis list scaler sees, and what it does not (kombu's Redis transport, read in
kombu 5.7 `kombu/transport/redis.py`):

* A message published to queue `q` is LPUSHed to the list `q` when its priority falls in the
  first priority step, and to `q` + "\\x06\\x16" + step otherwise (default steps 0, 3, 6, 9).
  The service sets `priority_steps: [0]`, so every message of the queue is in the one list
  `q` of the broker's database: `LLEN q` is the whole backlog.
* A message a worker has taken (BRPOP) but not acknowledged (acks late: until the task ends)
  is no longer in the list: it sits in the `unacked` hash (delivery tag -> message) and the
  `unacked_index` sorted set, shared by every queue of the database, until the ack deletes
  it, or until the visibility timeout puts it back in the list. The list length therefore
  counts waiting jobs only, never running ones.

So the target is "waiting jobs per replica": with prefetch 1 a worker pod holds exactly
`--concurrency` jobs, all running, none waiting in its buffer, so a target equal to the
concurrency asks for one more pod for every `-c` jobs left in the list. Because running jobs
do not count, a drained list says nothing about busy workers; the scale-down stabilization
window is at least the task time limit, so a scale-in seldom stops a busy worker; one that is
stopped finishes its task within its soft-shutdown window or hands it back to the queue
(runtime/django_eks_runtime/worker_shutdown.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from stack.config.model import StackConfig
from stack.config.names import NAMESPACE, WORKER
from stack.config.workers import WorkerDeployment, worker_deployment
from stack.model.scaling_delays import COOLDOWN_SECONDS, POLLING_INTERVAL_SECONDS
from stack.workloads.pods import Manifest, labels
from stack.workloads.worker import worker_labels

AUTH_SECRET = "keda-redis-auth"
"""The Secret (app namespace) holding only the Redis AUTH token, for the TriggerAuthentication."""
AUTH_SECRET_KEY = "password"
TRIGGER_AUTHENTICATION = "redis-broker"
PLACEHOLDER_TOKEN = "placeholder-redis-token"
"""The token in offline renderings of the auth Secret; never a real credential."""



def scale_to_zero_timing(min_replicas: int) -> dict[str, int]:
    """`pollingInterval` and `cooldownPeriod`, only where KEDA uses them: with minReplicaCount 0.

    Above zero the HPA does all the scaling (it reads the metric through KEDA's metrics server
    on its own sync period) and KEDA's own loop only decides activation to and from zero, so
    both fields are ignored, and KEDA's admission webhook answers every create and update of
    the ScaledObject with a warning for each ("... is configured but is not relevant",
    kedacore/keda apis/keda/v1alpha1/scaledobject_webhook.go, `verifyScaledObjects`, v2.20.2
    lines 336-358), which `pulumi up` prints on every run.
    """
    if min_replicas > 0:
        return {}
    return {"pollingInterval": POLLING_INTERVAL_SECONDS, "cooldownPeriod": COOLDOWN_SECONDS}

FALLBACK_FAILURES = 3
"""Failed polls (Redis unreachable, bad auth) before KEDA holds the fallback replica count."""

TRANSFER_HPA_OWNERSHIP = "scaledobject.keda.sh/transfer-hpa-ownership"
"""ScaledObject annotation: adopt the existing HPA named in horizontalPodAutoscalerConfig.name
(https://keda.sh/docs/latest/reference/scaledobject-spec)."""

HPA_MAX_STABILIZATION_SECONDS = 3600
"""The HPA API's upper bound for a stabilization window."""

SCALE_DOWN_MIN_STABILIZATION_SECONDS = 300


@dataclass(frozen=True)
class BrokerLocation:
    """Where the Celery broker lives, as the worker's REDIS_URL says: no credentials."""

    address: str
    """host:port"""
    database: int
    tls: bool


def broker_location(redis_url: str) -> BrokerLocation:
    """The host, port, database and TLS of a redis:// or rediss:// URL (the token is dropped)."""
    parts = urlsplit(redis_url)
    if parts.scheme not in ("redis", "rediss"):
        raise ValueError(f"broker URL scheme must be redis or rediss, got {parts.scheme!r}")
    if not parts.hostname:
        raise ValueError("broker URL has no host")
    path = parts.path.lstrip("/")
    try:
        database = int(path) if path else 0
    except ValueError:
        raise ValueError(f"broker URL database must be a number, got {path!r}") from None
    port = parts.port or 6379
    return BrokerLocation(address=f"{parts.hostname}:{port}", database=database, tls=parts.scheme == "rediss")


def scale_down_stabilization_seconds(config: StackConfig, name: str = WORKER) -> int:
    # Running jobs are invisible to the list length: when the list drains, the HPA would
    # remove busy workers at once. Waiting at least one task time limit lets them finish
    # the jobs they hold before a lower count sticks.
    return min(
        HPA_MAX_STABILIZATION_SECONDS,
        max(SCALE_DOWN_MIN_STABILIZATION_SECONDS, worker_deployment(config, name).spec.task_time_limit_seconds),
    )


def trigger_metadata(deployment: WorkerDeployment, location: BrokerLocation, queue: str) -> dict[str, str]:
    """The Redis list scaler's metadata for the list of `queue` (all strings, as KEDA reads them)."""
    scaling = deployment.spec.autoscaling
    return {
        "address": location.address,
        "databaseIndex": str(location.database),
        "enableTLS": "true" if location.tls else "false",
        "listName": queue,
        "listLength": str(scaling.queue_length_per_replica),
        "activationListLength": str(scaling.activation_queue_length),
    }


def triggers(deployment: WorkerDeployment, location: BrokerLocation) -> list[dict[str, object]]:
    """One Redis list trigger per queue of the Deployment.

    The scaler reads one list (`listName`, https://keda.sh/docs/2.20/scalers/redis-lists/), so
    a Deployment of several queues has a trigger each. KEDA hands each trigger to the HPA as a
    metric of its own, and "if multiple metrics are specified in a HorizontalPodAutoscaler, this
    calculation is done for each metric, and then the largest of the desired replica counts is
    chosen" (https://kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/
    #algorithm-details): such a Deployment is sized for its longest list, not for the sum of
    its lists. Queues whose backlogs add up belong on Deployments of their own.
    """
    return [
        {
            "type": "redis",
            "metricType": "AverageValue",
            "metadata": trigger_metadata(deployment, location, queue),
            "authenticationRef": {"name": TRIGGER_AUTHENTICATION},
        }
        for queue in deployment.queues
    ]


def scaled_object(config: StackConfig, location: BrokerLocation, name: str = WORKER) -> Manifest:
    """Drives the worker Deployment `name` from the length of its Celery queues."""
    deployment = worker_deployment(config, name)
    worker = deployment.spec
    scaling = worker.autoscaling
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {
            "name": deployment.name,
            "namespace": NAMESPACE,
            "labels": worker_labels(deployment),
            # A stack deployed before KEDA has a CPU HPA named "worker" on the Deployment until
            # the update that adds this object ends; KEDA's webhook refuses a second autoscaler
            # for the same Deployment, so KEDA takes that HPA over instead (same name, below).
            "annotations": {TRANSFER_HPA_OWNERSHIP: "true"},
        },
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment.name},
            "minReplicaCount": scaling.min_replicas,
            "maxReplicaCount": scaling.max_replicas,
            **scale_to_zero_timing(scaling.min_replicas),
            # Broker unreachable: keep at least the steady-state count, never scale in blind.
            "fallback": {
                "failureThreshold": FALLBACK_FAILURES,
                "replicas": worker.replicas,
                "behavior": "currentReplicasIfHigher",
            },
            "advanced": {
                "horizontalPodAutoscalerConfig": {
                    "name": deployment.name,
                    "behavior": {
                        "scaleDown": {
                            "stabilizationWindowSeconds": scale_down_stabilization_seconds(config, name),
                            "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}],
                        },
                    },
                },
            },
            "triggers": triggers(deployment, location),
        },
    }


def trigger_authentication() -> Manifest:
    """Hands the scaler the AUTH token from the Secret; the token is in no manifest."""
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "TriggerAuthentication",
        "metadata": {
            "name": TRIGGER_AUTHENTICATION,
            "namespace": NAMESPACE,
            "labels": labels(WORKER),
        },
        "spec": {
            "secretTargetRef": [
                {"parameter": "password", "name": AUTH_SECRET, "key": AUTH_SECRET_KEY}
            ],
        },
    }


def auth_secret(token: str) -> Manifest:
    """The Secret the TriggerAuthentication reads; in the cluster `token` is a secret Output."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": AUTH_SECRET, "namespace": NAMESPACE, "labels": labels(WORKER)},
        "type": "Opaque",
        "stringData": {AUTH_SECRET_KEY: token},
    }
