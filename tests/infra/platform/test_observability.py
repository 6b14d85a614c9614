"""Logs, alarms and the dashboard (stack/platform/observability.py): every alarm and dashboard
metric is one its service publishes, under the dimensions and statistics it documents; the
dashboard body has CloudWatch's structure; the log groups exist, with the configured retention,
before the add-on that writes them."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from stack.config.rules import StackConfigError
from stack.model.observability import LOG_GROUP_KINDS
from stack.tools.offline import OfflineRun
from tests.infra.support.configs import small_config
from tests.infra.support.dependencies import comes_after
from tests.infra.support.stack_files import STACKS, run_edited, stack_run

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
DASHBOARD = "aws:cloudwatch/dashboard:Dashboard"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
ADDON = "aws:eks/addon:Addon"
SUBSCRIPTION = "aws:sns/topicSubscription:TopicSubscription"

ALB_PAGE = "https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-cloudwatch-metrics.html"
RDS_PAGE = "https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/rds-metrics.html"
CACHE_PAGE = (
    "https://docs.aws.amazon.com/AmazonElastiCache/latest/dg/CacheMetrics.Redis.html (DatabaseMemoryUsagePercentage, "
    "Evictions, calculated at the cache node level); dimension CacheClusterId: aws-cdk-lib "
    "aws-elasticache/lib/elasticache-canned-metrics.generated.d.ts (2.214.0) and, for a replication group's nodes "
    "`<group>-001`..., https://github.com/widdix/aws-cf-templates/issues/571"
)
INSIGHTS_PAGE = (
    "https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/Container-Insights-metrics-enhanced-EKS.html; "
    "dimension sets: aws/amazon-cloudwatch-agent-test test/metric_value_benchmark/eks_daemonset_test.go "
    "(expectedDimsToMetrics: pod_status_pending, cluster_number_of_running_pods and cluster_node_count under ClusterName)"
)
PERCENTILE = re.compile(r"p(\d{1,2}(\.\d+)?|100)")

# What each service publishes: (namespace, metric) -> the dimension sets, the statistics that mean
# something for it, and where that is documented.
PUBLISHED: dict[tuple[str, str], tuple[list[set[str]], set[str], str]] = {
    ("AWS/ApplicationELB", "RequestCount"): ([{"LoadBalancer"}, {"LoadBalancer", "TargetGroup"}], {"Sum"}, ALB_PAGE),
    ("AWS/ApplicationELB", "HTTPCode_Target_5XX_Count"): (
        [{"LoadBalancer"}, {"LoadBalancer", "TargetGroup"}],
        {"Sum"},
        ALB_PAGE,
    ),
    ("AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count"): ([{"LoadBalancer"}], {"Sum"}, ALB_PAGE),
    ("AWS/ApplicationELB", "TargetResponseTime"): (
        [{"LoadBalancer"}, {"LoadBalancer", "TargetGroup"}],
        {"Average", "percentile"},
        ALB_PAGE,
    ),
    ("AWS/ApplicationELB", "UnHealthyHostCount"): (
        [{"LoadBalancer", "TargetGroup"}],
        {"Average", "Minimum", "Maximum"},
        ALB_PAGE,
    ),
    ("AWS/ApplicationELB", "HealthyHostCount"): (
        [{"LoadBalancer", "TargetGroup"}],
        {"Average", "Minimum", "Maximum"},
        ALB_PAGE,
    ),
    ("AWS/RDS", "CPUUtilization"): ([{"DBInstanceIdentifier"}], {"Average", "Maximum", "Minimum"}, RDS_PAGE),
    ("AWS/RDS", "FreeStorageSpace"): ([{"DBInstanceIdentifier"}], {"Average", "Minimum"}, RDS_PAGE),
    ("AWS/RDS", "DatabaseConnections"): ([{"DBInstanceIdentifier"}], {"Average", "Maximum"}, RDS_PAGE),
    ("AWS/ElastiCache", "DatabaseMemoryUsagePercentage"): ([{"CacheClusterId"}], {"Average", "Maximum"}, CACHE_PAGE),
    ("AWS/ElastiCache", "Evictions"): ([{"CacheClusterId"}], {"Sum"}, CACHE_PAGE),
    ("ContainerInsights", "pod_status_pending"): ([{"ClusterName"}], {"Average", "Minimum", "Maximum"}, INSIGHTS_PAGE),
    ("ContainerInsights", "cluster_number_of_running_pods"): ([{"ClusterName"}], {"Average"}, INSIGHTS_PAGE),
    ("ContainerInsights", "cluster_node_count"): ([{"ClusterName"}], {"Average", "Minimum"}, INSIGHTS_PAGE),
}


def check_published(namespace: str, metric: str, dimensions: set[str], stat: str) -> None:
    assert (namespace, metric) in PUBLISHED, f"{namespace} {metric}: not a metric the table knows"
    dimension_sets, stats, source = PUBLISHED[(namespace, metric)]
    assert dimensions in dimension_sets, f"{namespace} {metric} has no dimensions {dimensions} ({source})"
    kind = "percentile" if PERCENTILE.fullmatch(stat) else stat
    assert kind in stats, f"{namespace} {metric}: statistic {stat} ({source})"


def values_of(run: OfflineRun) -> dict[str, str]:
    """The dimension values only the resources know, as the mock engine answered them."""
    alb = run.named("aws:lb/loadBalancer:LoadBalancer", "web-alb").outputs["arnSuffix"]
    group = run.named("aws:lb/targetGroup:TargetGroup", "web-tg").outputs["arnSuffix"]
    database = run.named("aws:rds/instance:Instance", "postgres").outputs["identifier"]
    nodes = run.named("aws:elasticache/replicationGroup:ReplicationGroup", "redis").outputs["memberClusters"]
    return {
        "LoadBalancer": alb,
        "TargetGroup": group,
        "DBInstanceIdentifier": database,
        "ClusterName": run.outputs["clusterName"],
        "CacheClusterId": "|".join(nodes),
    }


def check_value(run: OfflineRun, name: str, value: str) -> None:
    expected = values_of(run)[name]
    assert value in expected.split("|") if name == "CacheClusterId" else value == expected, (name, value)


@pytest.mark.parametrize("stack", STACKS)
def test_every_alarm_watches_a_published_metric_of_this_stack(stack: str) -> None:
    run = stack_run(stack)
    alarms = run.of_type(ALARM)
    assert len(alarms) == 7 + 2 * (1 + run.config.redis.replicas)
    topic = run.named("aws:sns/topic:Topic", "watch-alarms").outputs["arn"]
    for alarm in alarms:
        inputs = alarm.inputs
        assert inputs["alarmActions"] == [topic] and inputs["okActions"] == [topic]
        assert inputs["alarmDescription"]
        if "metricQueries" in inputs:
            queries = inputs["metricQueries"]
            returned = [q for q in queries if q.get("returnData")]
            assert len(returned) == 1 and "expression" in returned[0]
            for query in queries:
                if "metric" in query:
                    metric = query["metric"]
                    assert re.search(rf"\b{query['id']}\b", returned[0]["expression"])
                    check_published(metric["namespace"], metric["metricName"], set(metric["dimensions"]), metric["stat"])
                    for name, value in metric["dimensions"].items():
                        check_value(run, name, value)
        else:
            stat = inputs.get("statistic") or inputs["extendedStatistic"]
            assert ("statistic" in inputs) != ("extendedStatistic" in inputs)
            check_published(inputs["namespace"], inputs["metricName"], set(inputs["dimensions"]), stat)
            for name, value in inputs["dimensions"].items():
                check_value(run, name, value)


def test_the_5xx_rate_is_a_percentage_of_requests() -> None:
    alarm = stack_run("dev").named(ALARM, "watch-alb-5xx-rate").inputs
    expression = next(q["expression"] for q in alarm["metricQueries"] if q.get("returnData"))
    target5xx, elb5xx, requests = 3, 2, 50
    # The expression, evaluated as CloudWatch would for one minute of these counts.
    rate = eval(expression.replace("FILL", "fill"), {"fill": lambda value, default: value}, locals())  # noqa: S307
    assert rate == 10.0
    assert alarm["threshold"] == 5.0 and alarm["comparisonOperator"] == "GreaterThanThreshold"


# --- the dashboard: CloudWatch's "Dashboard Body Structure and Syntax"
# (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/CloudWatch-Dashboard-Body-Structure.html):
# a `widgets` array (0-500); each widget has `type`, `x` (0-23), `y` (>= 0), `width` (1-24),
# `height` (1-1000) and `properties`; a metric widget's properties have `metrics` (arrays of
# namespace, metric name, dimension name/value pairs and an optional options object), `region`,
# `view` (timeSeries, singleValue, gauge, bar, pie), `stat`, `period` (seconds, a multiple of 60).
WIDGET_TYPES = {"metric", "text", "log", "alarm", "explorer"}
VIEWS = {"timeSeries", "singleValue", "gauge", "bar", "pie"}


def dashboard_problems(body: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    widgets = body.get("widgets")
    if not isinstance(widgets, list) or len(widgets) > 500:
        return ["widgets: an array of at most 500 widgets is required"]
    cells: set[tuple[int, int]] = set()
    for n, w in enumerate(widgets):
        at = f"widgets[{n}]"
        if w.get("type") not in WIDGET_TYPES:
            problems.append(f"{at}.type {w.get('type')!r}")
        x, y, width, height = (w.get(k) for k in ("x", "y", "width", "height"))
        if not (isinstance(x, int) and 0 <= x <= 23 and isinstance(y, int) and y >= 0):
            problems.append(f"{at}: x {x}, y {y}")
            continue
        if not (isinstance(width, int) and 1 <= width <= 24 and x + width <= 24):
            problems.append(f"{at}: width {width} at x {x} leaves the 24-unit grid")
            continue
        if not (isinstance(height, int) and 1 <= height <= 1000):
            problems.append(f"{at}: height {height}")
            continue
        area = {(i, j) for i in range(x, x + width) for j in range(y, y + height)}
        if area & cells:
            problems.append(f"{at} overlaps another widget")
        cells |= area
        properties = w.get("properties")
        if not isinstance(properties, dict):
            problems.append(f"{at}.properties is not an object")
            continue
        if w["type"] == "metric":
            if properties.get("view") not in VIEWS or not isinstance(properties.get("region"), str):
                problems.append(f"{at}: view and region")
            if not (isinstance(properties.get("period"), int) and properties["period"] % 60 == 0):
                problems.append(f"{at}: period {properties.get('period')}")
            for row in properties.get("metrics") or [None]:
                if not (isinstance(row, list) and len(row) >= 2 and all(isinstance(v, str) for v in row[:-1])):
                    problems.append(f"{at}: metric row {row!r}")
                    continue
                names = row[:-1] if isinstance(row[-1], dict) else row
                if len(names) % 2:
                    problems.append(f"{at}: dimension names and values do not pair in {row!r}")
        if w["type"] == "text" and not isinstance(properties.get("markdown"), str):
            problems.append(f"{at}: a text widget needs markdown")
        if w["type"] == "alarm" and not isinstance(properties.get("alarms"), list):
            problems.append(f"{at}: an alarm widget lists alarm ARNs")
    return problems


def test_the_validator_refuses_what_cloudwatch_refuses() -> None:
    metric = {"metrics": [["AWS/RDS", "CPUUtilization"]], "view": "timeSeries", "region": "us-east-1", "period": 60}
    good = {"type": "metric", "x": 0, "y": 0, "width": 12, "height": 6, "properties": metric}
    assert dashboard_problems({"widgets": [good]}) == []
    assert dashboard_problems({}) != []
    assert dashboard_problems({"widgets": [{**good, "x": 16}]}) != []  # 16 + 12 > 24
    assert dashboard_problems({"widgets": [good, {**good, "x": 6}]}) != []  # overlap
    assert dashboard_problems({"widgets": [{**good, "properties": {**metric, "period": 90}}]}) != []
    assert dashboard_problems({"widgets": [{**good, "properties": {**metric, "metrics": [["AWS/RDS", "X", "k"]]}}]}) != []


@pytest.mark.parametrize("stack", STACKS)
def test_the_dashboard_body_has_cloudwatchs_structure_and_published_metrics(stack: str) -> None:
    run = stack_run(stack)
    body = json.loads(run.named(DASHBOARD, "watch-dashboard").inputs["dashboardBody"])
    assert dashboard_problems(body) == []
    alarms = {a.outputs["arn"] for a in run.of_type(ALARM)}
    (status,) = [w for w in body["widgets"] if w["type"] == "alarm"]
    assert set(status["properties"]["alarms"]) == alarms
    graphs = [w["properties"] for w in body["widgets"] if w["type"] == "metric"]
    assert graphs and all(g["region"] == run.config.region for g in graphs)
    for graph in graphs:
        for row in graph["metrics"]:
            options = row[-1]
            pairs = dict(zip(row[2:-1:2], row[3:-1:2]))
            check_published(row[0], row[1], set(pairs), options["stat"])
            for name, value in pairs.items():
                check_value(run, name, value)


@pytest.mark.parametrize("stack", STACKS)
def test_log_groups_exist_with_the_retention_before_the_addon_writes_them(stack: str) -> None:
    run = stack_run(stack)
    addon = run.named(ADDON, "watch-amazon-cloudwatch-observability")
    for kind in LOG_GROUP_KINDS:
        group = run.named(LOG_GROUP, f"watch-{kind}")
        assert group.inputs["name"] == f"/aws/containerinsights/{run.outputs['clusterName']}/{kind}"
        assert group.inputs["retentionInDays"] == run.config.observability.log_retention_days
        assert group.delete_before_replace
        # Created before the add-on (whose Fluent Bit would create it without retention), destroyed after it.
        assert comes_after(run, addon, group)
    # The agents are DaemonSets: after every node group.
    assert all(comes_after(run, addon, g) for g in run.of_type("aws:eks/nodeGroup:NodeGroup"))
    (association,) = addon.inputs["podIdentityAssociations"]
    assert association["serviceAccount"] == "cloudwatch-agent"
    role = next(r for r in run.of_type("aws:iam/role:Role") if r.outputs["arn"] == association["roleArn"])
    statement = json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]
    assert statement["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    attachment = run.named("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "watch-agent")
    assert attachment.inputs["policyArn"] == "arn:aws:iam::aws:policy/CloudWatchAgentServerPolicy"
    assert comes_after(run, addon, attachment)


def app_signals_on(agent_config: dict[str, Any]) -> bool:
    """The chart's rule for a custom `agent.config` (aws-observability/helm-charts @71a298f,
    templates/_helpers.tpl `manager.modify-auto-monitor-config`): Application Signals stay on, and
    the operator auto-instruments services, when the config has an `application_signals` section
    under logs.metrics_collected or traces.traces_collected."""
    logs = agent_config.get("logs", {}).get("metrics_collected", {})
    traces = agent_config.get("traces", {}).get("traces_collected", {})
    return "application_signals" in logs or "application_signals" in traces


@pytest.mark.parametrize("stack", STACKS)
def test_the_addon_runs_container_insights_without_application_signals(stack: str) -> None:
    run = stack_run(stack)
    addon = run.named(ADDON, "watch-amazon-cloudwatch-observability")
    agent_config = json.loads(addon.inputs["configurationValues"])["agent"]["config"]
    # The chart's default config has both; ours keeps Container Insights only, so the operator
    # injects no SDK into the app's pods and no request is billed as an application signal.
    default = {
        "agent": {"region": run.config.region},
        "logs": {"metrics_collected": {"application_signals": {}, "kubernetes": {"enhanced_container_insights": True}}},
        "traces": {"traces_collected": {"application_signals": {}}},
    }
    assert app_signals_on(default) and not app_signals_on(agent_config)
    assert agent_config["logs"]["metrics_collected"] == {"kubernetes": {"enhanced_container_insights": True}}
    assert agent_config["agent"] == {"region": run.config.region}


def test_each_subscriber_gets_a_subscription_and_the_off_switch_removes_everything() -> None:
    subscribers = [
        {"protocol": "email", "endpoint": "ops@example.com"},
        {"protocol": "https", "endpoint": "https://hooks.example.com/alarms"},
    ]
    run = run_edited(lambda raw: raw.update({"django-eks:observability": {"subscribers": subscribers}}))
    topic = run.named("aws:sns/topic:Topic", "watch-alarms").outputs["arn"]
    got = sorted((s.inputs["protocol"], s.inputs["endpoint"], s.inputs["topic"]) for s in run.of_type(SUBSCRIPTION))
    assert got == sorted((s["protocol"], s["endpoint"], topic) for s in subscribers)

    off = run_edited(lambda raw: raw.update({"django-eks:observability": {"enabled": False}}))
    kinds = {r.type for r in off.resources}
    assert not kinds & {ALARM, DASHBOARD, SUBSCRIPTION, "aws:sns/topic:Topic"}
    assert not [r for r in off.of_type(ADDON) if r.inputs["addonName"] == "amazon-cloudwatch-observability"]
    assert not [r for r in off.of_type(LOG_GROUP) if "containerinsights" in r.inputs["name"]]


@pytest.mark.parametrize(
    ("observability", "key"),
    [
        ({"subscribers": [{"protocol": "pager", "endpoint": "x"}]}, "observability.subscribers.0.protocol"),
        ({"subscribers": [{"protocol": "email", "endpoint": "ops"}]}, "observability.subscribers.0.endpoint"),
        ({"subscribers": [{"protocol": "https", "endpoint": "http://x"}]}, "observability.subscribers.0.endpoint"),
        ({"logRetentionDays": 10}, "observability.logRetentionDays"),
        ({"thresholds": {"albErrorPercent": 0}}, "observability.thresholds.albErrorPercent"),
        ({"thresholds": {"alb5xxPercent": 1}}, "observability.thresholds.alb5xxPercent"),
    ],
)
def test_bad_observability_config_names_the_key(observability: dict[str, Any], key: str) -> None:
    with pytest.raises(StackConfigError) as error:
        small_config(observability=observability)
    assert [p.path for p in error.value.problems] == [key]
