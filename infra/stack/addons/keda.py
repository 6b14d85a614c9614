"""KEDA, the event-driven autoscaler: its Helm chart pin and values.

KEDA's operator reads the ScaledObject (`stack.workloads.queue_scaling`) and keeps an HPA for
the worker Deployment fed with the queue length through its metrics server.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stack.addons.helm import HelmChart
from stack.config.model import StackConfig
from stack.platform.node_pools import node_placement

CHART = "keda"
CHART_REPOSITORY = "https://kedacore.github.io/charts"
CHART_VERSION = "2.20.2"
"""Chart 2.20.2 installs KEDA 2.20.2, the release whose CRDs are in data/keda (tag v2.20.2,
see data/SOURCES.md). Helm installs CRDs on first install only: bump both together."""

NAMESPACE = "keda"
RELEASE = HelmChart(name=CHART, version=CHART_VERSION, repository=CHART_REPOSITORY, namespace=NAMESPACE)

DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "keda"
CRD_FILES = (
    DATA_DIR / "keda.sh_scaledobjects.yaml",
    DATA_DIR / "keda.sh_triggerauthentications.yaml",
)


def placement(pool_name: str, config: StackConfig) -> dict[str, Any]:
    """nodeSelector (and tolerations) for a pool that accepts system pods."""
    return node_placement(pool_name, config.node_pools[pool_name])


OPERATOR_REPLICAS = 2
"""The operator elects a leader: a second replica takes over within seconds of a node drain."""


def chart_values(config: StackConfig, system_pool: str) -> dict[str, Any]:
    """Helm values: every KEDA pod on the system pool, with disruption budgets."""
    where = placement(system_pool, config)
    pod_placement = {"nodeSelector": where["nodeSelector"], "tolerations": where.get("tolerations", [])}
    return {
        "operator": {"replicaCount": OPERATOR_REPLICAS, **pod_placement},
        "metricsServer": {"replicaCount": 1, **pod_placement},
        "webhooks": {"replicaCount": 1, **pod_placement},
        # Operator: one of two may go. The metrics server and the webhook run once: a drain may
        # move them (maxUnavailable 1) rather than block forever; the HPA keeps its last count
        # while the metrics server restarts.
        "podDisruptionBudget": {
            "operator": {"minAvailable": 1},
            "metricServer": {"maxUnavailable": 1},
            "webhooks": {"maxUnavailable": 1},
        },
    }
