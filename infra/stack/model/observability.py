"""What the stack watches and what watching costs: the log groups, the alarms as data, the
dashboard body, and the log volume the plan prices. No AWS here: `stack.platform.observability`
registers the resources from these.

Each alarm names its metrics by namespace, name, dimensions and statistic as the service that
publishes them documents them (the sources are in `tests/infra/platform/test_observability.py`,
which checks every alarm and dashboard metric against them). A dimension's value is a reference
(`LOAD_BALANCER`, `TARGET_GROUP`, ...) the platform resolves to the resource's own value, so the
specs stay plain data the cost model can count.

Not here yet: the queue-wait and task-failure alarms. They need the app's own metrics (queue
wait per queue, task failures), which the runtime package will publish; an `AlarmSpec` over
those metrics joins `alarm_specs` then, with its threshold in `observability.thresholds`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from stack.config.model import StackConfig

LOG_GROUP_KINDS = ("application", "dataplane", "host", "performance")
"""The log groups the CloudWatch observability add-on writes: Fluent Bit the container logs
(application), the kubelet's and container runtime's (dataplane) and the node's (host); the
CloudWatch agent the Container Insights performance events (performance). On AL2023 nodes the
dataplane and host groups stay empty by default (the journal replaced the files Fluent Bit
tails): https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/Container-Insights-setup-EKS-addon.html"""

GIB = 2**30

# References to the dimension values only the deployed resources know.
LOAD_BALANCER = "loadBalancer"
"""The ALB's ARN suffix, `app/<name>/<id>`."""
TARGET_GROUP = "targetGroup"
"""The target group's ARN suffix, `targetgroup/<name>/<id>`."""
CLUSTER = "cluster"
"""The EKS cluster's name."""
DATABASE = "database"
"""The RDS instance's identifier."""


def cache_node(index: int) -> str:
    """The CacheClusterId of the replication group's `index`-th node (its member clusters)."""
    return f"cacheNode{index}"


def addon_configuration(region: str) -> dict[str, Any]:
    """The add-on's configuration values: Container Insights (enhanced observability) without
    Application Signals.

    The chart's default agent config turns on both (`applicationSignals.enabled: true`), and with
    Application Signals on, the add-on's operator auto-monitors every service in the regions that
    support it (`manager.monitorAllServices`, true there): it injects the ADOT Python SDK into our
    web and worker pods as they are created, and each request they serve becomes billed
    Application Signals telemetry. An `agent.config` of our own without an `application_signals`
    section turns that off: the chart then sets `monitorAllServices` to false and the agent
    receives no application signals (aws-observability/helm-charts @71a298f,
    charts/amazon-cloudwatch-observability/templates/_helpers.tpl `manager.modify-auto-monitor-config`
    and `cloudwatch-agent.build-default-config`, whose Container Insights part this repeats). The
    app's own metrics go to Amazon Managed Service for Prometheus instead (docs/operations.md).
    """
    return {
        "agent": {
            "config": {
                "agent": {"region": region},
                "logs": {"metrics_collected": {"kubernetes": {"enhanced_container_insights": True}}},
            }
        }
    }


def log_group_name(cluster_name: str, kind: str) -> str:
    """The name the add-on's agents write to (Fluent Bit's `log_group_name`,
    `/aws/containerinsights/${CLUSTER_NAME}/<kind>`)."""
    return f"/aws/containerinsights/{cluster_name}/{kind}"


@dataclass(frozen=True)
class MetricSpec:
    id: str
    namespace: str
    metric_name: str
    dimensions: Mapping[str, str]
    """Dimension name -> reference to its value (LOAD_BALANCER, ...)."""
    stat: str
    """Sum, Average, Minimum, Maximum, or a percentile such as p99."""


@dataclass(frozen=True)
class AlarmSpec:
    name: str
    meaning: str
    """What it means when it fires (the alarm's description; docs/operations.md says what to do)."""
    metrics: tuple[MetricSpec, ...]
    threshold: float
    comparison: str
    period_seconds: int
    evaluation_periods: int
    expression: str | None = None
    """Metric math over the metrics' ids; None: the alarm watches its one metric."""
    treat_missing_data: str = "notBreaching"
    unit_note: str = ""

    @property
    def metric_count(self) -> int:
        """Metrics CloudWatch bills the alarm for (one per metric, the expression is free)."""
        return len(self.metrics)


ALB = "AWS/ApplicationELB"
RDS = "AWS/RDS"
ELASTICACHE = "AWS/ElastiCache"
CONTAINER_INSIGHTS = "ContainerInsights"

_ALB = {"LoadBalancer": LOAD_BALANCER}
_TARGET_GROUP = {"TargetGroup": TARGET_GROUP, "LoadBalancer": LOAD_BALANCER}
_DATABASE = {"DBInstanceIdentifier": DATABASE}
_CLUSTER = {"ClusterName": CLUSTER}

# The metrics the alarms watch; the dashboard graphs them too.
REQUESTS = MetricSpec("requests", ALB, "RequestCount", _ALB, "Sum")
TARGET_5XX = MetricSpec("target5xx", ALB, "HTTPCode_Target_5XX_Count", _ALB, "Sum")
ELB_5XX = MetricSpec("elb5xx", ALB, "HTTPCode_ELB_5XX_Count", _ALB, "Sum")
P99 = MetricSpec("p99", ALB, "TargetResponseTime", _TARGET_GROUP, "p99")
UNHEALTHY = MetricSpec("unhealthy", ALB, "UnHealthyHostCount", _TARGET_GROUP, "Maximum")
PENDING = MetricSpec("pending", CONTAINER_INSIGHTS, "pod_status_pending", _CLUSTER, "Minimum")
"""Minimum over each minute: pods were Pending all of it."""
DATABASE_CPU = MetricSpec("cpu", RDS, "CPUUtilization", _DATABASE, "Average")
FREE_STORAGE = MetricSpec("free", RDS, "FreeStorageSpace", _DATABASE, "Minimum")
CONNECTIONS = MetricSpec("connections", RDS, "DatabaseConnections", _DATABASE, "Maximum")


def cache_memory(node: int) -> MetricSpec:
    return MetricSpec(f"memory{node}", ELASTICACHE, "DatabaseMemoryUsagePercentage", {"CacheClusterId": cache_node(node)}, "Maximum")


def cache_evictions(node: int) -> MetricSpec:
    return MetricSpec(f"evictions{node}", ELASTICACHE, "Evictions", {"CacheClusterId": cache_node(node)}, "Sum")


def target_p99_seconds(config: StackConfig) -> float:
    threshold = config.observability.thresholds.target_p99_seconds
    return threshold if threshold is not None else config.web.timeout_seconds / 2


def database_connections(config: StackConfig) -> int:
    """The connections the app's pods can hold at their maximum: a connection per request thread
    of every web process, per worker process, and the reconciler's and the migrate Job's."""
    threshold = config.observability.thresholds.database_connections
    if threshold is not None:
        return threshold
    web, worker = config.web, config.worker
    return web.autoscaling.max_replicas * web.gunicorn_workers * web.threads + (
        worker.autoscaling.max_replicas * worker.concurrency
    ) + 2


def free_storage_bytes(config: StackConfig) -> float:
    return config.database.storage_gib * GIB * config.observability.thresholds.database_free_storage_percent / 100


def alarm_specs(config: StackConfig) -> list[AlarmSpec]:
    """Every alarm of the stack, in the order they are registered and documented."""
    t = config.observability.thresholds
    specs = [
        AlarmSpec(
            "alb-5xx-rate",
            f"More than {t.alb_error_percent:g}% of requests answered 5xx (by the pods or the ALB itself) "
            "for 5 minutes",
            (TARGET_5XX, ELB_5XX, REQUESTS),
            t.alb_error_percent,
            "GreaterThanThreshold",
            60,
            5,
            # The 5xx counts are absent, not 0, in a minute without any: FILL makes them 0. A minute
            # without requests divides by nothing, gives no data and is not breaching.
            expression="100 * (FILL(target5xx, 0) + FILL(elb5xx, 0)) / requests",
        ),
        AlarmSpec(
            "target-p99-latency",
            f"The pods' p99 response time above {target_p99_seconds(config):g} s for 10 minutes",
            (P99,),
            target_p99_seconds(config),
            "GreaterThanThreshold",
            300,
            2,
        ),
        AlarmSpec(
            "unhealthy-targets",
            "A web pod failing the ALB's health check for 5 minutes",
            (UNHEALTHY,),
            0,
            "GreaterThanThreshold",
            60,
            5,
        ),
        AlarmSpec(
            "pods-pending",
            f"Pods Pending for {t.pending_minutes} minutes: a node pool at its maxSize, or pods no "
            "node type can hold",
            (PENDING,),
            0,
            "GreaterThanThreshold",
            60,
            t.pending_minutes,
        ),
        AlarmSpec(
            "database-cpu",
            f"PostgreSQL CPU above {t.database_cpu_percent:g}% for 15 minutes",
            (DATABASE_CPU,),
            t.database_cpu_percent,
            "GreaterThanThreshold",
            300,
            3,
        ),
        AlarmSpec(
            "database-free-storage",
            f"PostgreSQL free storage below {t.database_free_storage_percent:g}% of "
            f"{config.database.storage_gib} GiB",
            (FREE_STORAGE,),
            free_storage_bytes(config),
            "LessThanThreshold",
            300,
            1,
            unit_note="bytes",
        ),
        AlarmSpec(
            "database-connections",
            f"More than {database_connections(config)} PostgreSQL connections for 10 minutes",
            (CONNECTIONS,),
            database_connections(config),
            "GreaterThanThreshold",
            300,
            2,
        ),
    ]
    for node in range(1 + config.redis.replicas):
        specs += [
            AlarmSpec(
                f"cache-{node + 1}-memory",
                f"Cache node {node + 1}: memory above {t.cache_memory_percent:g}% of maxmemory for 10 minutes "
                "(at 100% the broker refuses writes)",
                (cache_memory(node),),
                t.cache_memory_percent,
                "GreaterThanThreshold",
                300,
                2,
            ),
            AlarmSpec(
                f"cache-{node + 1}-evictions",
                f"Cache node {node + 1} evicted keys: queued messages lost (its policy is noeviction)",
                (cache_evictions(node),),
                0,
                "GreaterThanThreshold",
                300,
                1,
            ),
        ]
    return specs


# --- the dashboard ------------------------------------------------------------------------

GRID_WIDTH = 24
"""CloudWatch dashboards are 24 units wide (widget `width` 1-24, `x` 0-23):
https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/CloudWatch-Dashboard-Body-Structure.html"""


@dataclass(frozen=True)
class Graph:
    title: str
    metrics: tuple[MetricSpec, ...]
    period: int = 60
    width: int = 8
    height: int = 6


def graphs(config: StackConfig) -> list[Graph]:
    """The dashboard's graphs: the alarms' metrics, and what explains them."""
    nodes = range(1 + config.redis.replicas)
    return [
        Graph("Requests and 5xx (per minute)", (REQUESTS, TARGET_5XX, ELB_5XX)),
        Graph("Target response time (s)", (MetricSpec("p50", ALB, "TargetResponseTime", _TARGET_GROUP, "p50"), P99)),
        Graph("Web targets", (MetricSpec("healthy", ALB, "HealthyHostCount", _TARGET_GROUP, "Minimum"), UNHEALTHY)),
        Graph(
            "Pods and nodes",
            (
                PENDING,
                MetricSpec("running", CONTAINER_INSIGHTS, "cluster_number_of_running_pods", _CLUSTER, "Average"),
                MetricSpec("nodes", CONTAINER_INSIGHTS, "cluster_node_count", _CLUSTER, "Average"),
            ),
        ),
        Graph("PostgreSQL CPU (%) and connections", (DATABASE_CPU, CONNECTIONS), period=300),
        Graph("PostgreSQL free storage (bytes)", (FREE_STORAGE,), period=300),
        Graph("Cache memory (% of maxmemory)", tuple(cache_memory(n) for n in nodes), period=300),
        Graph("Cache evictions", tuple(cache_evictions(n) for n in nodes), period=300),
    ]


def metric_row(metric: MetricSpec, values: Mapping[str, str]) -> list[Any]:
    """A metric widget's row: namespace, name, dimension name/value pairs, then its options."""
    row: list[Any] = [metric.namespace, metric.metric_name]
    for name, reference in metric.dimensions.items():
        row += [name, values[reference]]
    return [*row, {"stat": metric.stat, "id": metric.id, "label": metric.id}]


def dashboard_body(config: StackConfig, *, region: str, values: Mapping[str, str], alarm_arns: list[str]) -> dict[str, Any]:
    """The dashboard: a line of text, the alarms' states, then the graphs, left to right in rows."""
    widgets: list[dict[str, Any]] = [
        {
            "type": "text",
            "x": 0,
            "y": 0,
            "width": GRID_WIDTH,
            "height": 2,
            "properties": {
                "markdown": f"## {values[CLUSTER]}\nWhat each alarm means and what to do: docs/operations.md. "
                f"Container logs: `{log_group_name(values[CLUSTER], 'application')}`."
            },
        },
        {
            "type": "alarm",
            "x": 0,
            "y": 2,
            "width": GRID_WIDTH,
            "height": 3,
            "properties": {"title": "Alarms", "alarms": alarm_arns},
        },
    ]
    x, y = 0, 5
    for graph in graphs(config):
        if x + graph.width > GRID_WIDTH:
            x, y = 0, y + graph.height
        widgets.append(
            {
                "type": "metric",
                "x": x,
                "y": y,
                "width": graph.width,
                "height": graph.height,
                "properties": {
                    "title": graph.title,
                    "view": "timeSeries",
                    "region": region,
                    "period": graph.period,
                    "stat": graph.metrics[0].stat,
                    "metrics": [metric_row(m, values) for m in graph.metrics],
                },
            }
        )
        x += graph.width
    return {"widgets": widgets}


# --- what it costs ------------------------------------------------------------------------


@dataclass(frozen=True)
class ObservabilityUsage:
    log_gib_per_day: float
    log_gib_stored: float
    alarm_metrics: int
    alarms: int
    dashboards: int = 1
    assumption: str = field(default="")


def observability_usage(config: StackConfig) -> ObservabilityUsage:
    """A month of logs, alarms and the dashboard at steady state: each day's logs kept for the
    retention. Log bytes are counted as written (uncompressed), in GiB."""
    o = config.observability
    pods = config.web.replicas + config.worker.replicas
    jobs = config.storage.jobs_per_day
    daily = (jobs * o.log_bytes_per_job + pods * o.log_mib_per_pod_day * 2**20) / GIB
    specs = alarm_specs(config)
    return ObservabilityUsage(
        log_gib_per_day=daily,
        log_gib_stored=daily * o.log_retention_days,
        alarm_metrics=sum(s.metric_count for s in specs),
        alarms=len(specs),
        assumption=f"assumption: {jobs:,} jobs/day x {o.log_bytes_per_job:,} B + {pods} app pods x "
        f"{o.log_mib_per_pod_day:g} MiB/day, kept {o.log_retention_days} days",
    )
