"""The `Observability` component: container logs to CloudWatch Logs, the alarms, their SNS
topic, and one dashboard (what each alarm means and what to do: docs/operations.md).

Logs: the EKS add-on `amazon-cloudwatch-observability` (Fluent Bit for the container logs, the
CloudWatch agent for Container Insights), not Fluent Bit alone: it is an EKS add-on like the
cluster's others (one version pin per Kubernetes version, `stack.platform.addon_versions`), takes
its credentials from EKS Pod Identity (add-on v3.1.0 and later) and brings the Container Insights
metrics the pods-pending alarm watches, which Fluent Bit alone does not
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/Container-Insights-setup-EKS-addon.html,
https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/install-CloudWatch-Observability-EKS-addon.html).
Why, at more length: docs/operations.md.

The log groups are created here first, with the configured retention: Fluent Bit's outputs in
the add-on set `auto_create_group true` (chart amazon-cloudwatch-observability, values.yaml,
https://github.com/aws-observability/helm-charts @00bd626), so a group missing when the agents
start would be created by them, with no retention, and this program's CreateLogGroup would then
fail (ResourceAlreadyExistsException). The add-on depends on the groups, so Pulumi creates them
before it and deletes it (DeleteAddon, which removes the agents) before them on destroy.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from stack.config.model import StackConfig
from stack.model.observability import (
    CLUSTER,
    DATABASE,
    LOAD_BALANCER,
    LOG_GROUP_KINDS,
    TARGET_GROUP,
    AlarmSpec,
    addon_configuration,
    alarm_specs,
    cache_node,
    dashboard_body,
    log_group_name,
)
from stack.platform.eks_addons import eks_addon
from stack.platform.iam import trust_policy
from stack.platform.storage import partition

TYPE = "django-eks:platform:Observability"

ADDON = "amazon-cloudwatch-observability"
AGENT_SERVICE_ACCOUNT = "cloudwatch-agent"
"""The add-on's service account (namespace amazon-cloudwatch), which Pod Identity gives the role."""
AGENT_POLICY = "CloudWatchAgentServerPolicy"
"""The AWS-managed policy the add-on's documentation attaches to the agent's role."""


@dataclass(frozen=True)
class ObservabilityArgs:
    config: StackConfig
    cluster_name: str
    """The EKS cluster's name, known before it exists: the log groups are named after it."""
    cluster: aws.eks.Cluster
    after: Sequence[pulumi.Resource]
    """The node groups and the cluster's add-ons: the agents run as DaemonSets."""
    load_balancer_arn_suffix: pulumi.Input[str]
    target_group_arn_suffix: pulumi.Input[str]
    database_identifier: pulumi.Input[str]
    cache_member_clusters: pulumi.Output[Sequence[str]]
    tags: Mapping[str, str]


def subscription_name(name: str, protocol: str, endpoint: str) -> str:
    """Named after what it is, so that adding or removing a subscriber leaves the others alone."""
    return f"{name}-subscriber-{hashlib.sha256(f'{protocol}:{endpoint}'.encode()).hexdigest()[:8]}"


def _dimensions(dimensions: Mapping[str, str], values: Mapping[str, pulumi.Input[str]]) -> dict[str, pulumi.Input[str]]:
    return {name: values[reference] for name, reference in dimensions.items()}


def alarm_inputs(spec: AlarmSpec, values: Mapping[str, pulumi.Input[str]]) -> dict[str, Any]:
    """The MetricAlarm arguments of a spec: one metric, or metric math over several."""
    common: dict[str, Any] = {
        "alarm_description": spec.meaning,
        "comparison_operator": spec.comparison,
        "evaluation_periods": spec.evaluation_periods,
        "threshold": spec.threshold,
        "treat_missing_data": spec.treat_missing_data,
    }
    if spec.expression is None:
        (metric,) = spec.metrics
        # Percentiles go in ExtendedStatistic, the five statistics in Statistic (PutMetricAlarm).
        stat = {"extended_statistic": metric.stat} if metric.stat.startswith("p") else {"statistic": metric.stat}
        return {
            **common,
            "namespace": metric.namespace,
            "metric_name": metric.metric_name,
            "dimensions": _dimensions(metric.dimensions, values),
            "period": spec.period_seconds,
            **stat,
        }
    queries: list[dict[str, Any]] = [
        {
            "id": metric.id,
            "return_data": False,
            "metric": {
                "namespace": metric.namespace,
                "metric_name": metric.metric_name,
                "dimensions": _dimensions(metric.dimensions, values),
                "period": spec.period_seconds,
                "stat": metric.stat,
            },
        }
        for metric in spec.metrics
    ]
    queries.append({"id": "rate", "expression": spec.expression, "label": spec.name, "return_data": True})
    return {**common, "metric_queries": queries}


def _nth(index: int) -> Callable[[Sequence[str]], str]:
    return lambda ids: sorted(ids)[index]


class Observability(pulumi.ComponentResource):
    topic_arn: pulumi.Output[str]
    dashboard_name: pulumi.Output[str]
    log_groups: dict[str, aws.cloudwatch.LogGroup]

    def __init__(self, name: str, args: ObservabilityArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TYPE, name, None, opts)
        config, tags = args.config, dict(args.tags)
        region = config.region
        child = pulumi.ResourceOptions(parent=self)

        self.log_groups = {
            kind: aws.cloudwatch.LogGroup(
                f"{name}-{kind}",
                name=log_group_name(args.cluster_name, kind),
                retention_in_days=config.observability.log_retention_days,
                tags=tags,
                # An explicit name: a replacement must delete the old group before creating the new.
                opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True),
            )
            for kind in LOG_GROUP_KINDS
        }
        role = aws.iam.Role(
            f"{name}-agent",
            assume_role_policy=json.dumps(trust_policy()),
            description=f"The CloudWatch agent and Fluent Bit of {args.cluster_name} (EKS Pod Identity)",
            tags=tags,
            opts=child,
        )
        attachment = aws.iam.RolePolicyAttachment(
            f"{name}-agent",
            role=role.name,
            policy_arn=f"arn:{partition(region)}:iam::aws:policy/{AGENT_POLICY}",
            opts=child,
        )
        eks_addon(
            name,
            ADDON,
            cluster=args.cluster,
            kubernetes_version=config.cluster.version,
            depends_on=[*args.after, *self.log_groups.values(), attachment],
            parent=self,
            pod_identity=[
                aws.eks.AddonPodIdentityAssociationArgs(role_arn=role.arn, service_account=AGENT_SERVICE_ACCOUNT)
            ],
            configuration=addon_configuration(region),
        )

        topic = aws.sns.Topic(f"{name}-alarms", name=f"{args.cluster_name}-alarms", tags=tags, opts=child)
        for subscriber in config.observability.subscribers:
            aws.sns.TopicSubscription(
                subscription_name(name, subscriber.protocol, subscriber.endpoint),
                topic=topic.arn,
                protocol=subscriber.protocol,
                endpoint=subscriber.endpoint,
                opts=child,
            )

        specs = alarm_specs(config)
        values: dict[str, pulumi.Input[str]] = {
            LOAD_BALANCER: args.load_balancer_arn_suffix,
            TARGET_GROUP: args.target_group_arn_suffix,
            CLUSTER: args.cluster_name,
            DATABASE: args.database_identifier,
        }
        for node in range(1 + config.redis.replicas):
            # Cluster mode off: the group's nodes are its member clusters, `<group>-001`, `-002`, ...
            values[cache_node(node)] = args.cache_member_clusters.apply(_nth(node))
        alarms = [
            aws.cloudwatch.MetricAlarm(
                f"{name}-{spec.name}",
                name=f"{args.cluster_name}-{spec.name}",
                alarm_actions=[topic.arn],
                ok_actions=[topic.arn],
                tags=tags,
                opts=child,
                **alarm_inputs(spec, values),
            )
            for spec in specs
        ]

        references = list(values)

        def body(resolved: list[Any]) -> str:
            dimension_values, arns = resolved
            return json.dumps(
                dashboard_body(config, region=region, values=dict(zip(references, dimension_values)), alarm_arns=list(arns))
            )

        dashboard = aws.cloudwatch.Dashboard(
            f"{name}-dashboard",
            dashboard_name=args.cluster_name,
            dashboard_body=pulumi.Output.all([values[r] for r in references], [alarm.arn for alarm in alarms]).apply(body),
            opts=child,
        )
        self.topic_arn = topic.arn
        self.dashboard_name = dashboard.dashboard_name
        self.register_outputs({"topicArn": self.topic_arn, "dashboardName": self.dashboard_name})
