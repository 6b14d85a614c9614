"""Small stack configs for the capacity and cost tests."""

from __future__ import annotations

from typing import Any

from stack.config.model import StackConfig
from stack.config.rules import parse_stack_config


def small_config(**overrides: Any) -> StackConfig:
    """One m4.large node, single NAT over two AZs, the smallest Redis and PostgreSQL."""
    raw: dict[str, Any] = {
        "network": {"azCount": 2, "natGateways": "single"},
        "cluster": {"version": "1.35"},
        "nodePools": {
            "default": {"instanceType": "m4.large", "minSize": 1, "desiredSize": 1, "maxSize": 2, "diskSizeGib": 20}
        },
        "web": {
            "nodePool": "default",
            "replicas": 1,
            "cpuMillicores": 250,
            "memoryMib": 448,  # uWSGI 1x8 with an upload on each thread needs 440 MiB (granian 376)
            "autoscaling": {"minReplicas": 1, "maxReplicas": 2},
        },
        "worker": {
            "nodePool": "default",
            "replicas": 1,
            "cpuMillicores": 500,
            "memoryMib": 512,
            "autoscaling": {"minReplicas": 1, "maxReplicas": 1},
        },
        "redis": {"nodeType": "cache.t4g.micro", "replicas": 0},
        "database": {"instanceClass": "db.t4g.micro", "storageGib": 20, "multiAz": False},
        # As in the dev stack: 512 MiB workers hold the decode of at most ~30 M pixels.
        "jobs": {"maxPixels": 30_000_000},
    }
    for key, value in overrides.items():
        # None drops a section (`jobs=None` beside an `app`, which refuses the demo's keys;
        # worker=None with workers=...).
        if value is None:
            raw.pop(key, None)
        else:
            raw[key] = value
    return parse_stack_config(raw)


def split_pools_config(*, worker_max_replicas: int, worker_cpu: int = 850, workers_max_size: int = 4) -> StackConfig:
    """Web on an untainted m5.large pool, workers on a tainted c5.large pool."""
    return small_config(
        network={"azCount": 3, "natGateways": "perAz"},
        nodePools={
            "web": {"instanceType": "m5.large", "minSize": 1, "desiredSize": 2, "maxSize": 3},
            "workers": {
                "instanceType": "c5.large",
                "minSize": 1,
                "desiredSize": 2,
                "maxSize": workers_max_size,
                "taints": [{"key": "workload", "value": "worker", "effect": "NoSchedule"}],
            },
        },
        web={
            "nodePool": "web",
            "replicas": 2,
            "cpuMillicores": 500,
            "memoryMib": 512,
            "autoscaling": {"minReplicas": 2, "maxReplicas": 4},
        },
        worker={
            "nodePool": "workers",
            "replicas": 3,
            "cpuMillicores": worker_cpu,
            "memoryMib": 768,
            "autoscaling": {"minReplicas": 3, "maxReplicas": worker_max_replicas},
        },
    )
