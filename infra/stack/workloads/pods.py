"""What every pod of the app shares: labels, metadata, security contexts, resources, zone spread,
the environment from the app's ConfigMap and Secret, and the pod spec and template around one
container.

Everything here is a pure function: no Pulumi engine, no cluster. The workloads (web.py,
worker.py, migration.py, reconciler.py, benchmark.py) build their pods from it; manifests.py
orders the objects and the `Workloads` component registers them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stack.config.model import AppConfig, NodePoolConfig
from stack.config.names import (
    APP_COMPONENT_ENV,
    METRICS_BIND_ENV,
    METRICS_DIR,
    METRICS_PATH,
    METRICS_PORT_NAME,
    MULTIPROC_DIR_ENV,
    NAMESPACE,
    NODE_NAME_ENV,
    POD_NAME_ENV,
)
from stack.platform.node_pools import node_placement

Manifest = dict[str, Any]

CONFIG_MAP = "app-config"
"""The base of the ConfigMap's name (app_config.py); in the cluster Pulumi appends a suffix."""
SECRET = "app-secrets"
"""The base of the Secret's name (app_config.py), likewise."""

RUN_AS_ID = 10001
"""The uid/gid the image's app user has; Pod Security "restricted" needs a non-root uid."""

PART_OF = "django-eks"


# --- metadata ---------------------------------------------------------------------------


def labels(component: str) -> dict[str, str]:
    """The labels of every object of one component; `selector_labels` is a stable subset."""
    return {**selector_labels(component), "app.kubernetes.io/part-of": PART_OF}


def selector_labels(component: str) -> dict[str, str]:
    # Selectors are immutable on Deployments: keep them to what never changes.
    return {"app.kubernetes.io/name": "django", "app.kubernetes.io/component": component}


def metadata(name: str, component: str, namespace: str = NAMESPACE) -> dict[str, Any]:
    return {"name": name, "namespace": namespace, "labels": labels(component)}


# --- pods -------------------------------------------------------------------------------


def pod_security_context() -> dict[str, Any]:
    """What Pod Security "restricted" requires, plus a fixed uid so files in /tmp are ours."""
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS_ID,
        "runAsGroup": RUN_AS_ID,
        "fsGroup": RUN_AS_ID,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS_ID,
        "runAsGroup": RUN_AS_ID,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def resources(cpu_millicores: int, memory_mib: int) -> dict[str, Any]:
    # No CPU limit: CFS throttling would stall request threads and Celery heartbeats even when
    # the node has idle cores; the request already guarantees each pod its share. Memory is
    # not compressible, so its limit equals the request: a pod never relies on memory the
    # scheduler did not reserve, and an overrun is an OOM kill of that pod alone.
    memory = f"{memory_mib}Mi"
    return {
        "requests": {"cpu": f"{cpu_millicores}m", "memory": memory},
        "limits": {"memory": memory},
    }


def zone_spread(component: str) -> list[dict[str, Any]]:
    # ScheduleAnyway: a pool may have no node (or no room) in some zone, and the Cluster
    # Autoscaler cannot add one there when the pool is at maxSize or the zone is down;
    # DoNotSchedule would then leave pods Pending during a rollout or a zone outage.
    # Availability first, balance as a strong preference.
    return [
        {
            "maxSkew": 1,
            "topologyKey": key,
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": selector_labels(component)},
            # Count only pods of the same ReplicaSet, so a rollout spreads the new pods too.
            "matchLabelKeys": ["pod-template-hash"],
        }
        for key in ("topology.kubernetes.io/zone", "kubernetes.io/hostname")
    ]


def env_from(config_map_name: str, secret_name: str) -> list[dict[str, Any]]:
    """The app's environment: every key of its ConfigMap and of its Secret."""
    return [{"configMapRef": {"name": config_map_name}}, {"secretRef": {"name": secret_name}}]


DEMO_LAUNCHER = "config.launch"
"""The demo service's launcher module (service/config/launch.py)."""
RUNTIME_LAUNCHER = "django_eks_runtime"
"""An app's launcher: the runtime package (runtime/, `python -m django_eks_runtime <process>`)."""


def launch_command(process: str, app: AppConfig | None = None) -> list[str]:
    """The image's launcher for `process`, exec form: the demo's (no `app` section) or the runtime
    package's. It reads its settings from the container's env and execs the server, so SIGTERM
    reaches the server."""
    return ["python", "-m", DEMO_LAUNCHER if app is None else RUNTIME_LAUNCHER, process]


def env_list(settings: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"name": name, "value": value} for name, value in settings.items()]


APP_COMPONENT = APP_COMPONENT_ENV
MULTIPROC_DIR = MULTIPROC_DIR_ENV
METRICS_BIND = METRICS_BIND_ENV
METRICS_SETTINGS = (APP_COMPONENT, MULTIPROC_DIR, METRICS_BIND)
"""The literal settings of the app's metrics the platform gives its pods (beside POD_NAME and
NODE_NAME from the downward API)."""


def downward_env(component: str) -> list[dict[str, Any]]:
    """Who the pod is, for the app's metrics (`app_pod_info{component,pod,node}`): the pod's and its
    node's names from the downward API, and the component the metrics carry."""
    return [
        {"name": POD_NAME_ENV, "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": NODE_NAME_ENV, "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        {"name": APP_COMPONENT, "value": component},
    ]


METRICS_VOLUME = {"name": "app-metrics", "emptyDir": {"sizeLimit": "256Mi"}}
"""Where the processes of a pod write their metric samples (prometheus-client multiprocess mode)."""
METRICS_MOUNT = {"name": "app-metrics", "mountPath": METRICS_DIR}


def metrics_env(component: str, *settings: tuple[str, str]) -> list[dict[str, Any]]:
    """The environment of a pod that serves /metrics: who it is, its multiprocess directory, and
    `settings` (the worker's METRICS_BIND)."""
    return [
        *downward_env(component),
        {"name": MULTIPROC_DIR, "value": METRICS_DIR},
        *({"name": name, "value": value} for name, value in settings),
    ]


def scrape_annotations(port: int) -> dict[str, str]:
    """What the collector discovers a pod by (its scrape configuration keeps these pods only)."""
    return {"prometheus.io/scrape": "true", "prometheus.io/port": str(port), "prometheus.io/path": METRICS_PATH}


def metrics_port(port: int) -> dict[str, Any]:
    return {"name": METRICS_PORT_NAME, "containerPort": port, "protocol": "TCP"}


TMP_VOLUME = {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}}
"""The one writable directory of a pod whose root filesystem is read-only."""
TMP_MOUNT = {"name": "tmp", "mountPath": "/tmp"}


def app_container(
    name: str,
    image: str,
    command: list[str],
    *,
    config_map_name: str,
    secret_name: str,
    cpu_millicores: int,
    memory_mib: int,
) -> dict[str, Any]:
    """A container of the app's image running `command` with the app's environment, locked
    down, sized, with the writable /tmp: what the reconciler, beat and the cron jobs run."""
    return {
        "name": name,
        "image": image,
        "command": command,
        "envFrom": env_from(config_map_name, secret_name),
        "resources": resources(cpu_millicores, memory_mib),
        "securityContext": container_security_context(),
        "volumeMounts": [dict(TMP_MOUNT)],
    }


def pod_spec(
    *,
    component: str,
    pool_name: str,
    pool: NodePoolConfig,
    container: dict[str, Any],
    termination_grace_seconds: int,
    restart_policy: str = "Always",
    spread: bool = True,
    init_containers: list[dict[str, Any]] | None = None,
    service_account: str | None = None,
) -> dict[str, Any]:
    """The pod spec of every app workload around its one `container`: the component's own
    service account (no API token), Pod Security "restricted", a writable /tmp, the node
    placement of `pool`, and (with `spread`) the spread over zones and nodes. `service_account`
    lends the pods another component's account (and its Pod Identity role)."""
    spec: dict[str, Any] = {
        "serviceAccountName": service_account or component,
        "automountServiceAccountToken": False,
        "securityContext": pod_security_context(),
        "terminationGracePeriodSeconds": termination_grace_seconds,
        "restartPolicy": restart_policy,
        **({"initContainers": init_containers} if init_containers else {}),
        "containers": [container],
        "volumes": [dict(TMP_VOLUME)],
        **node_placement(pool_name, pool),
    }
    if spread:
        spec["topologySpreadConstraints"] = zone_spread(component)
    return spec


def pod_template(component: str, spec: dict[str, Any]) -> dict[str, Any]:
    """A pod template: `spec` under the component's labels."""
    return {"metadata": {"labels": labels(component)}, "spec": spec}


def pod_disruption_budget(
    component: str, *, name: str | None = None, match_labels: Mapping[str, str] | None = None
) -> Manifest:
    """The PDB of the pods of `component` (or of those `match_labels` selects), named `name`
    (default: the component's)."""
    # maxUnavailable rather than minAvailable: a single-replica dev Deployment can still be
    # drained (its pod is evicted and rescheduled), while bigger ones lose one pod at a time.
    selector = dict(match_labels) if match_labels is not None else selector_labels(component)
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {**metadata(name or component, component), "labels": {**labels(component), **selector}},
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": selector},
            # Let a drain evict a pod that never became healthy (a crash loop would otherwise
            # block node rotation forever).
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
        },
    }
