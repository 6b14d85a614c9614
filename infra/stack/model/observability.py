"""What the stack watches and what watching costs: the log groups, the alarms as data, the
dashboard body, and the log volume the plan prices. No AWS here: `stack.platform.observability`
registers the resources from these.

Each alarm names its metrics by namespace, name, dimensions and statistic as the service that
publishes them documents them (the sources are in `tests/infra/platform/test_observability.py`,
which checks every alarm and dashboard metric against them). A dimension's value is a reference
(`LOAD_BALANCER`, `TARGET_GROUP`, ...) the platform resolves to the resource's own value, so the
specs stay plain data the cost model can count.

The app's own metrics (queue wait per queue, task outcomes, requests) are Prometheus metrics:
an AWS managed collector scrapes the pods into an Amazon Managed Service for Prometheus
workspace, whose alerting rules (`alert_rules`) and alert manager (`alertmanager_definition`)
send to the same SNS topic; `stack.platform.prometheus` registers them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
import textwrap
from typing import Any

import yaml

from stack.config.model import StackConfig
from stack.config.names import METRICS_PORT_NAME, NAMESPACE
from stack.config.workers import worker_deployments
from stack.model.app_metrics import TASK_QUEUE_WAIT, TASKS_TOTAL
from stack.model.prices import HOURS_PER_MONTH
from stack.model.scaling_delays import queue_wait_targets

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


# --- the app's metrics (Amazon Managed Service for Prometheus) --------------------------------

FAILED = "failed"
FINISHED = ("succeeded", "failed")
"""The outcomes of celery_tasks_total that end a task (`retried` sends it back to the queue)."""

QUEUE_WAIT_ALERT = "CeleryQueueWaitHigh"
TASK_FAILURE_ALERT = "CeleryTaskFailureRate"
RULES_NAMESPACE = "app-alerts"
QUEUE_WAIT_WINDOW = "5m"
QUEUE_WAIT_FOR = "10m"
FAILURE_WINDOW = "10m"
FAILURE_FOR = "5m"
WORKSPACE_RETENTION_DAYS = 150
"""How long a workspace keeps its samples by default (AMP quotas, "Retention time for ingested
data": 150 days, https://docs.aws.amazon.com/prometheus/latest/userguide/AMP_quotas.html)."""
SAMPLE_BYTES = 2
"""Stored bytes per sample: "Prometheus metrics samples (typically 1 or 2 bytes)"
(https://aws.amazon.com/prometheus/pricing/); metadata comes on top."""

SCRAPE_JOB = "app-pods"

# The pod's Kubernetes metadata as Prometheus' kubernetes_sd_config (role: pod) names it
# (https://prometheus.io/docs/prometheus/latest/configuration/configuration/#kubernetes_sd_config).
_ANNOTATION = "__meta_kubernetes_pod_annotation_"
_SCRAPE = f"{_ANNOTATION}prometheus_io_scrape"
_PORT = f"{_ANNOTATION}prometheus_io_port"
_PATH = f"{_ANNOTATION}prometheus_io_path"


def scrape_configuration(config: StackConfig) -> dict[str, Any]:
    """The collector's Prometheus configuration: the pods of the app namespace that ask for it
    (`prometheus.io/scrape: "true"`), on the container port named `metrics` (one target per pod:
    discovery yields one per declared port), at the port and path their annotations give, with
    the labels namespace, pod, container and component. The managed collector accepts global,
    scrape_config, relabel_config and kubernetes_sd_config sections, an interval of 30 s or more
    (https://docs.aws.amazon.com/prometheus/latest/userguide/AMP-collector-how-to.html, Scraper
    configuration)."""
    interval = f"{config.observability.metrics.scrape_interval_seconds}s"
    return {
        "global": {"scrape_interval": interval},
        "scrape_configs": [
            {
                "job_name": SCRAPE_JOB,
                "scrape_interval": interval,
                "kubernetes_sd_configs": [{"role": "pod", "namespaces": {"names": [NAMESPACE]}}],
                "relabel_configs": [
                    {"source_labels": [_SCRAPE], "action": "keep", "regex": "true"},
                    {
                        "source_labels": ["__meta_kubernetes_pod_container_port_name"],
                        "action": "keep",
                        "regex": METRICS_PORT_NAME,
                    },
                    {"source_labels": [_PATH], "action": "replace", "regex": "(.+)", "target_label": "__metrics_path__"},
                    {
                        # The pod's IP with the annotation's port.
                        "source_labels": ["__meta_kubernetes_pod_ip", _PORT],
                        "action": "replace",
                        "regex": "(.+);(\\d+)",
                        "replacement": "$1:$2",
                        "target_label": "__address__",
                    },
                    {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
                    {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
                    {"source_labels": ["__meta_kubernetes_pod_container_name"], "target_label": "container"},
                    {
                        "source_labels": ["__meta_kubernetes_pod_label_app_kubernetes_io_component"],
                        "target_label": "component",
                    },
                ],
            }
        ],
    }


def queue_wait_expression(queue: str, seconds: float) -> str:
    return (
        f'histogram_quantile(0.95, sum by (queue, le) (rate({TASK_QUEUE_WAIT}_bucket{{queue="{queue}"}}'
        f"[{QUEUE_WAIT_WINDOW}]))) > {seconds:g}"
    )


def failure_expression(percent: float) -> str:
    finished = "|".join(FINISHED)
    return (
        f'100 * sum by (queue) (rate({TASKS_TOTAL}{{outcome="{FAILED}"}}[{FAILURE_WINDOW}])) '
        f'/ sum by (queue) (rate({TASKS_TOTAL}{{outcome=~"{finished}"}}[{FAILURE_WINDOW}])) > {percent:g}'
    )


def alert_rules(config: StackConfig) -> dict[str, Any]:
    """The rules file of the workspace's rule groups namespace (Prometheus' rule file format,
    which AMP takes as is: https://docs.aws.amazon.com/prometheus/latest/userguide/AMP-ruler-rulesfile.html):
    the p95 queue wait per queue above its target, and the failed share of finished tasks per
    queue above `observability.thresholds.taskFailurePercent`."""
    percent = config.observability.thresholds.task_failure_percent
    waits = [
        {
            "alert": QUEUE_WAIT_ALERT,
            "expr": queue_wait_expression(queue, seconds),
            "for": QUEUE_WAIT_FOR,
            # One rule per queue, each with its own threshold: the label keeps them apart.
            "labels": {"severity": "warning", "queue": queue},
            "annotations": {
                "summary": f"Queue {queue}: p95 wait above {seconds:g} s for {QUEUE_WAIT_FOR}",
                "description": "Tasks wait longer than the autoscalers should take to start a worker "
                "for them: a worker Deployment at maxReplicas, a node pool at maxSize, or pods that do "
                "not start (docs/operations.md).",
            },
        }
        for queue, seconds in queue_wait_targets(config).items()
    ]
    failures = {
        "alert": TASK_FAILURE_ALERT,
        "expr": failure_expression(percent),
        "for": FAILURE_FOR,
        "labels": {"severity": "warning"},
        "annotations": {
            "summary": f"Queue {{{{ $labels.queue }}}}: more than {percent:g}% of finished tasks failed",
            "description": "Failed tasks as a share of succeeded + failed over 10 minutes: the logs of "
            "the failing task name the error (docs/operations.md).",
        },
    }
    return {"groups": [{"name": "celery", "rules": [*waits, failures]}]}


def alertmanager_definition(*, topic_arn: str, region: str) -> str:
    """The definition AMP takes: `alertmanager_config` holding the configuration as a YAML block
    string (the service's example: `alertmanager_config: |` followed by the route and receivers)."""
    inner = yaml.safe_dump(alertmanager_config(topic_arn=topic_arn, region=region), sort_keys=False)
    return "alertmanager_config: |\n" + textwrap.indent(inner, "  ")


def alertmanager_config(*, topic_arn: str, region: str) -> dict[str, Any]:
    """The workspace's alert manager: every alert to the stack's SNS topic. AMP takes only SNS
    receivers, with a sigv4 region and without api_url or http_config
    (https://docs.aws.amazon.com/prometheus/latest/userguide/AMP-alertmanager-receiver-config.html),
    under the key `alertmanager_config`
    (https://docs.aws.amazon.com/prometheus/latest/userguide/AMP-alertmanager-config.html)."""
    return {
            "route": {
                "receiver": "alarm-topic",
                "group_by": ["alertname", "queue"],
                "group_wait": "30s",
                "group_interval": "5m",
                "repeat_interval": "4h",
            },
            "receivers": [
                {
                    "name": "alarm-topic",
                    "sns_configs": [
                        {
                            "topic_arn": topic_arn,
                            "sigv4": {"region": region},
                            "subject": "{{ .CommonLabels.alertname }} {{ .Status }}",
                            "send_resolved": True,
                        }
                    ],
                }
            ],
    }


@dataclass(frozen=True)
class MetricsUsage:
    pods: int
    series_per_pod: int
    samples_per_minute: float
    samples_per_month: float
    collector_hours: float
    stored_gib: float
    assumption: str


def metrics_usage(config: StackConfig) -> MetricsUsage:
    """A month of the app's metrics at steady state: every app pod at its configured replicas,
    `series_per_pod` series each, one sample per series per scrape; stored for the workspace's
    retention at SAMPLE_BYTES a sample; one collector all month."""
    m = config.observability.metrics
    pods = config.web.replicas + sum(d.spec.replicas for d in worker_deployments(config))
    per_minute = pods * m.series_per_pod * 60 / m.scrape_interval_seconds
    per_month = per_minute * 60 * HOURS_PER_MONTH
    stored = per_minute * 60 * 24 * WORKSPACE_RETENTION_DAYS * SAMPLE_BYTES / GIB
    return MetricsUsage(
        pods=pods,
        series_per_pod=m.series_per_pod,
        samples_per_minute=per_minute,
        samples_per_month=per_month,
        collector_hours=HOURS_PER_MONTH,
        stored_gib=stored,
        assumption=f"assumption: {m.series_per_pod} series/pod x {pods} app pods x "
        f"{60 / m.scrape_interval_seconds:g} samples/min (scrape every {m.scrape_interval_seconds} s) = "
        f"{per_month / 1e6:,.1f} M samples/month; kept {WORKSPACE_RETENTION_DAYS} days at {SAMPLE_BYTES} B/sample "
        f"= {stored:.2f} GiB",
    )
