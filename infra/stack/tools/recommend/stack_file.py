"""A recommended configuration as a stack: its config, its validation, its stack file."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from stack.config.loader import decoded_stack_file, project_config
from stack.model.capacity import capacity_report
from stack.config.model import PROJECT, JobsConfig, ObservabilityConfig, StackConfig, WebConfig, WorkerAutoscaling, WorkerConfig
from stack.config.names import DEFAULT_QUEUE
from stack.config.workers import jobs_deployment
from stack.model.pod_requests import ClusterPods, cluster_pods, PodRequests, workload_shapes
from stack.config.rules import StackConfigError, parse_stack_config
from stack.model.cost import monthly_cost
from stack.model.prices import PriceBook
from stack.tools.recommend.search import MemoryRule, PoolChoice

WEB_POOL = "web"
WORKER_POOL = "workers"
SHARED_POOL = "default"
MIN_REPLICAS = 2
"""autoscaling.minReplicas of both workloads: two pods in two zones (workers: unless the base
stack scales them to zero, which it keeps)."""
WORKER_TAINT = {"key": "workload", "value": "worker", "effect": "NoSchedule"}


def base_document(stack: str, root: Path) -> dict[str, Any]:
    """A stack file's config, values decoded, keys as written (namespaced)."""
    return decoded_stack_file(stack, root)


def _key(name: str) -> str:
    return f"{PROJECT}:{name}"


def memory_rule(base: dict[str, Any]) -> MemoryRule:
    """What the recommended pods' memory must hold, from the base stack's limits.

    The pixel limit is kept; so are the upload slots per web process (the base stack's
    jobs.uploadsPerWebPod over its processes, at least 1), whatever processes the
    recommended web shape runs.
    """
    raw = project_config(base)
    jobs = JobsConfig.model_validate(raw.get("jobs") or {})
    web = WebConfig.model_validate(raw.get("web") or {})
    return MemoryRule(jobs.max_pixels, max(1, jobs.uploads_per_web_pod // web.gunicorn_workers))


def base_cluster_pods(base: dict[str, Any]) -> ClusterPods:
    """The DaemonSets and system pods of the base stack's cluster, which the recommendation keeps
    (its `observability` section: the CloudWatch add-on's agents on every node)."""
    return cluster_pods(ObservabilityConfig.model_validate(project_config(base).get("observability") or {}))


def kept_pods(base: dict[str, Any]) -> list[PodRequests]:
    """The pods of the base stack the recommendation keeps as they are and puts on the web pool:
    the worker Deployments of queues other than the jobs queue (at their maxReplicas), beat and
    the cron jobs (one pod each)."""
    raw = project_config(base)
    if not raw.get("workers") and not raw.get("beat") and not raw.get("cronJobs"):
        return []
    config = parse_stack_config(raw)
    jobs = jobs_deployment(config).name
    return [
        shape.pod
        for shape in workload_shapes(config)
        if shape.name not in ("web", jobs)
        for _ in range(shape.max_replicas)
    ]


def recommended_document(
    base: dict[str, Any], web: PoolChoice, worker: PoolChoice, disk_gib: int, *, shared: bool = False
) -> dict[str, Any]:
    """The base stack's config with the pools, web and worker of the recommendation.

    `shared`: one pool (no taint) for web, workers and the system pods; otherwise a web pool
    (with the system pods) and a tainted workers pool.
    """
    assert web.shape is not None
    doc = copy.deepcopy(base)
    doc.pop(_key("benchmark"), None)  # it may name a pool the recommendation does not have
    web_pool, worker_pool = (SHARED_POOL, SHARED_POOL) if shared else (WEB_POOL, WORKER_POOL)
    # minSize = desiredSize = maxSize = the pods' nodes and the spare. The Cluster Autoscaler
    # removes an empty node above minSize (the spare, after scaleDownUnneededMinutes), so a
    # lower minSize would not keep the headroom; the autoscaling maxima are what fits on these
    # nodes, so the Cluster Autoscaler can place them without growing the pool.
    doc[_key("nodePools")] = {
        SHARED_POOL: {
            "instanceType": web.instance_type,
            "minSize": web.nodes,
            "desiredSize": web.nodes,
            "maxSize": web.nodes,
            "diskSizeGib": disk_gib,
        }
    } if shared else {
        WEB_POOL: {
            "instanceType": web.instance_type,
            "minSize": web.nodes,
            "desiredSize": web.nodes,
            "maxSize": web.nodes,
            "diskSizeGib": disk_gib,
        },
        WORKER_POOL: {
            "instanceType": worker.instance_type,
            "minSize": worker.nodes,
            "desiredSize": worker.nodes,
            "maxSize": worker.nodes,
            "diskSizeGib": disk_gib,
            "taints": [dict(WORKER_TAINT)],
        },
    }
    web_doc = dict(doc.get(_key("web")) or {})
    web_doc.update(
        nodePool=web_pool,
        replicas=web.replicas,
        server=web.shape.server,
        gunicornWorkers=web.shape.processes,
        threads=web.shape.threads,
        cpuMillicores=web.cpu_millicores,
        memoryMib=web.memory_mib,
    )
    web_doc["autoscaling"] = {
        **dict(web_doc.get("autoscaling") or {}),
        "minReplicas": MIN_REPLICAS,
        "maxReplicas": web.max_replicas,
    }
    doc[_key("web")] = web_doc
    jobs_doc = dict(doc.get(_key("jobs")) or {})
    jobs_doc["uploadsPerWebPod"] = memory_rule(base).web_uploads(web.shape)
    doc[_key("jobs")] = jobs_doc
    # With a `workers` map the recommendation sizes the Deployment of the jobs queue (the task
    # the benchmark measures); the others, beat and the cron jobs keep their shapes and move to
    # the web pool (which holds the system pods), where the capacity check must find them room.
    workers_map = dict(doc.get(_key("workers")) or {})
    jobs_key = next((k for k, v in workers_map.items() if DEFAULT_QUEUE in (v.get("queues") or [])), None)
    for key, entry in workers_map.items():
        if key != jobs_key:
            workers_map[key] = {**entry, "nodePool": web_pool}
    beat = doc.get(_key("beat"))
    if beat and "nodePool" in beat:
        doc[_key("beat")] = {**beat, "nodePool": web_pool}
    if doc.get(_key("cronJobs")):
        doc[_key("cronJobs")] = {k: {**v, "nodePool": web_pool} if "nodePool" in v else v
                                 for k, v in doc[_key("cronJobs")].items()}  # fmt: skip
    worker_doc = dict((workers_map[jobs_key] if jobs_key else doc.get(_key("worker"))) or {})
    base_scaling = dict(worker_doc.get("autoscaling") or {})
    worker_doc.update(
        nodePool=worker_pool,
        replicas=worker.replicas,
        concurrency=worker.concurrency,
        cpuMillicores=worker.cpu_millicores,
        memoryMib=worker.memory_mib,
    )
    worker_doc["autoscaling"] = {
        **base_scaling,
        "minReplicas": 0 if base_scaling.get("minReplicas") == 0 else MIN_REPLICAS,
        "maxReplicas": worker.max_replicas,
        "queueLengthPerReplica": queue_length_per_replica(
            base_scaling, base_concurrency=base_worker_concurrency(base), concurrency=worker.concurrency
        ),
    }
    if jobs_key:
        doc[_key("workers")] = {**workers_map, jobs_key: worker_doc}
    else:
        doc[_key("worker")] = worker_doc
    return doc



def base_worker_concurrency(base: dict[str, Any]) -> int:
    """The base stack's concurrency of the workers of the jobs queue (the config's default when
    it sets none)."""
    workers = dict(base.get(_key("workers")) or {})
    jobs = [v for v in workers.values() if DEFAULT_QUEUE in (v.get("queues") or [])]
    worker = dict(jobs[0] if jobs else base.get(_key("worker")) or {})
    value = worker.get("concurrency", WorkerConfig.model_fields["concurrency"].default)
    return int(value)


def queue_length_per_replica(base_scaling: dict[str, Any], *, base_concurrency: int, concurrency: int) -> int:
    """KEDA's waiting jobs per worker pod for the recommended concurrency.

    It must be a multiple of `worker.concurrency` (the config rule): the base stack's jobs
    per process are kept (default 1: every waiting job gets a free process), times the
    recommended concurrency.
    """
    default = WorkerAutoscaling.model_fields["queue_length_per_replica"].default
    base_target = int(base_scaling.get("queueLengthPerReplica", default))
    per_process = max(1, base_target // max(1, base_concurrency))
    return per_process * concurrency


@dataclass(frozen=True)
class Recommendation:
    web: PoolChoice
    worker: PoolChoice
    shared: bool
    document: dict[str, Any]
    config: StackConfig
    usd_per_month: float


def assemble(
    base: dict[str, Any],
    web: PoolChoice,
    worker: PoolChoice,
    disk_gib: int,
    prices: PriceBook,
    *,
    shared: bool = False,
) -> Recommendation | str:
    """The recommendation as a validated stack, or why it is not one."""
    document = recommended_document(base, web, worker, disk_gib, shared=shared)
    try:
        config = parse_stack_config(project_config(document))
    except StackConfigError as e:
        return str(e)
    errors = capacity_report(config).errors
    if errors:
        return "; ".join(str(e) for e in errors)
    return Recommendation(web, worker, shared, document, config, monthly_cost(config, prices).monthly_usd)


def stack_file_text(rec: Recommendation, header: list[str]) -> str:
    lines = ["# yaml-language-server: $schema=./schema/stack-config.schema.json"]
    lines += [f"# {line}".rstrip() for line in header]
    body = yaml.safe_dump({"config": rec.document}, sort_keys=False, default_flow_style=False)
    return "\n".join(lines) + "\n" + body


def header_lines(
    rec: Recommendation,
    *,
    command: str,
    jobs_per_hour: float,
    requests_per_second: float,
    results: list[str],
    base_stack: str,
    today: date,
) -> list[str]:
    web, worker = rec.web, rec.worker
    bases = sorted({web.per_pod.basis.describe(), worker.per_pod.basis.describe()})
    return [
        f"Recommended by `{command}` on {today.isoformat()}:",
        f"the cheapest stack found for {jobs_per_hour:,.0f} jobs/h and {requests_per_second:,.1f} req/s "
        "(GET /api/jobs/<id>: a database read and JSON),",
        "with one spare node per pool (a node's loss), and at least 2 nodes and 2 pods per workload (zones);",
        "minSize = desiredSize = maxSize, so that the Cluster Autoscaler keeps the spare node; the",
        "autoscaling maxima are the pods these nodes hold.",
        "web and workers share one pool." if rec.shared else "web (with the system pods) and workers in pools of their own.",
        f"Figures from {', '.join(results)}.",
        *(f"CPU basis: {b}" for b in bases),
        f"At the configured replicas: workers {worker.served_per_second * 3600:,.0f} jobs/h "
        f"({_margin(worker.margin)}), web {web.served_per_second:,.1f} req/s ({_margin(web.margin)}); "
        f"${rec.usd_per_month:,.2f}/month.",
        f"Everything else (network, cluster, Redis, database, load balancer, image) from Pulumi.{base_stack}.yaml.",
    ]


def _margin(value: float) -> str:
    return "no load given" if value == float("inf") else f"margin {value:+.0%}"
