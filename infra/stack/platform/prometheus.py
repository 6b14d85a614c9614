"""The `Prometheus` component: the app's own metrics in Amazon Managed Service for Prometheus.

A workspace; an AWS managed collector (`aws.amp.Scraper`) that discovers the app's pods by their
`prometheus.io/*` annotations and scrapes them from network interfaces in the cluster's private
subnets; the alerting rules (`stack.model.observability.alert_rules`); and the workspace's alert
manager, which sends to the stack's SNS alarm topic (the Observability component's). What each
alert means and what to do: docs/operations.md.

Cluster access: the cluster authenticates with access entries only (`authentication_mode` "API",
stack.platform.cluster), and for such a cluster the service creates the collector's access entry
and its Kubernetes permissions itself when the scraper is created ("any scrapers you create
through the Amazon Managed Service for Prometheus API or CLI ... will automatically have the
correct access entry policy created for you": Amazon Managed Service for Prometheus User Guide,
https://docs.aws.amazon.com/prometheus/latest/userguide/AMP-collector-how-to.html#AMP-collector-eks-setup,
"Configure Amazon EKS for scraper access with access entries"; the policy it generates: get,
list and watch on nodes, nodes/proxy, nodes/metrics, services, endpoints, pods, ingresses,
configmaps; ingresses and ingresses/status in extensions and networking.k8s.io; get on
kcm/metrics and ksh/metrics in metrics.eks.amazonaws.com; get on the non-resource URL /metrics).
So the program registers no access entry, ClusterRole or ClusterRoleBinding for it: an access
entry of its own for the same role would collide with the service's (EKS keeps one entry per
principal), and the aws-auth ConfigMap's `aps-collector-user` binding the guide describes for
the other mode has no identity mapped to it under "API".

Network: the collector's interfaces sit in the private subnets with a security group of their
own, which may reach the cluster security group (the nodes', so the pods', and the API server's
private endpoint, which discovery reads) on the metrics ports and 443 only; the cluster group
admits it there. The guide requires the cluster's endpoint access to include private access and
the VPC to resolve DNS (AMP-collector-how-to.html, "Create a scraper", prerequisites): the
cluster's `endpoint_private_access` is always on (stack.platform.cluster). The pods' NetworkPolicies admit the private subnets on the metrics ports only
(stack.workloads.network_policies).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import yaml

from stack.config.model import StackConfig
from stack.config.names import METRICS_PORTS
from stack.model.observability import RULES_NAMESPACE, alert_rules, alertmanager_definition, scrape_configuration
from stack.platform.security_groups import security_group, tcp_rule

TYPE = "django-eks:platform:Prometheus"

KUBERNETES_API_PORT = 443
"""The cluster's private API endpoint, which the collector's Kubernetes discovery reads."""

QUERY_API_SUFFIX = "api/v1/"
"""What follows the workspace's endpoint in a Prometheus HTTP API query: the workspace's
`prometheus_endpoint` ends with `/workspaces/<id>/` (a slash, e.g.
https://aps-workspaces.us-east-1.amazonaws.com/workspaces/ws-.../), and queries go to
`<endpoint>api/v1/query` (https://docs.aws.amazon.com/prometheus/latest/userguide/AMP-onboard-query-APIs.html)."""


@dataclass(frozen=True)
class PrometheusArgs:
    config: StackConfig
    cluster_name: str
    cluster_arn: pulumi.Input[str]
    vpc_id: pulumi.Input[str]
    private_subnet_ids: pulumi.Input[Sequence[str]]
    cluster_security_group_id: pulumi.Input[str]
    topic_arn: pulumi.Output[str]
    """The Observability component's alarm topic: the alert manager publishes to it."""
    after: Sequence[pulumi.Resource]
    """The node groups: the collector's first scrapes find the pods' nodes there."""
    tags: dict[str, str]


def topic_policy(*, topic_arn: str, workspace_arn: str) -> dict[str, Any]:
    """The alarm topic's access policy: the statement SNS gives a new topic (the owner account's
    principals, as before: CloudWatch alarms of the account keep publishing), and the one AMP's
    guide asks for, so that the workspace's alert manager may publish, confused-deputy guarded by
    the workspace's ARN and the account (https://docs.aws.amazon.com/prometheus/latest/userguide/AMP-alertmanager-receiver-AMPpermission.html)."""
    account = topic_arn.split(":")[4]
    return {
        "Version": "2008-10-17",
        "Id": "__default_policy_ID",
        "Statement": [
            {
                "Sid": "__default_statement_ID",
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": [
                    "SNS:GetTopicAttributes",
                    "SNS:SetTopicAttributes",
                    "SNS:AddPermission",
                    "SNS:RemovePermission",
                    "SNS:DeleteTopic",
                    "SNS:Subscribe",
                    "SNS:ListSubscriptionsByTopic",
                    "SNS:Publish",
                ],
                "Resource": topic_arn,
                "Condition": {"StringEquals": {"AWS:SourceOwner": account}},
            },
            {
                "Sid": "Allow_Publish_Alarms",
                "Effect": "Allow",
                "Principal": {"Service": "aps.amazonaws.com"},
                "Action": ["sns:Publish", "sns:GetTopicAttributes"],
                "Resource": topic_arn,
                "Condition": {
                    "ArnEquals": {"aws:SourceArn": workspace_arn},
                    "StringEquals": {"AWS:SourceAccount": account},
                },
            },
        ],
    }


def dump(document: dict[str, Any]) -> str:
    """YAML as the service reads it, in the program's key order."""
    return yaml.safe_dump(document, sort_keys=False)


class Prometheus(pulumi.ComponentResource):
    workspace_id: pulumi.Output[str]
    query_url: pulumi.Output[str]

    def __init__(self, name: str, args: PrometheusArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TYPE, name, None, opts)
        config, tags = args.config, dict(args.tags)
        child = pulumi.ResourceOptions(parent=self)

        workspace = aws.amp.Workspace(f"{name}-workspace", alias=args.cluster_name, tags=tags, opts=child)

        group = security_group(
            f"{name}-collector",
            description=f"The managed Prometheus collector of {args.cluster_name}",
            vpc_id=args.vpc_id,
            tags=tags,
            parent=self,
        )
        for port in (*METRICS_PORTS, KUBERNETES_API_PORT):
            what = "the Kubernetes API" if port == KUBERNETES_API_PORT else "pod metrics"
            tcp_rule(
                aws.vpc.SecurityGroupEgressRule,
                f"{name}-collector-out-{port}",
                security_group_id=group.id,
                description=f"Port {port} to the cluster ({what})",
                port=port,
                referenced_security_group_id=args.cluster_security_group_id,
                parent=self,
            )
            tcp_rule(
                aws.vpc.SecurityGroupIngressRule,
                f"{name}-cluster-in-{port}",
                security_group_id=args.cluster_security_group_id,
                description=f"Port {port} from the managed Prometheus collector ({what})",
                port=port,
                referenced_security_group_id=group.id,
                parent=self,
            )

        aws.amp.Scraper(
            f"{name}-collector",
            alias=args.cluster_name,
            source=aws.amp.ScraperSourceArgs(
                eks=aws.amp.ScraperSourceEksArgs(
                    cluster_arn=args.cluster_arn,
                    subnet_ids=args.private_subnet_ids,
                    security_group_ids=[group.id],
                )
            ),
            destination=aws.amp.ScraperDestinationArgs(
                amp=aws.amp.ScraperDestinationAmpArgs(workspace_arn=workspace.arn)
            ),
            scrape_configuration=dump(scrape_configuration(config)),
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.after)),
        )

        aws.amp.RuleGroupNamespace(
            f"{name}-rules",
            name=RULES_NAMESPACE,
            workspace_id=workspace.id,
            data=dump(alert_rules(config)),
            opts=child,
        )
        policy = aws.sns.TopicPolicy(
            f"{name}-topic-policy",
            arn=args.topic_arn,
            policy=pulumi.Output.all(args.topic_arn, workspace.arn).apply(
                lambda arns: json.dumps(topic_policy(topic_arn=arns[0], workspace_arn=arns[1]))
            ),
            opts=child,
        )
        aws.amp.AlertManagerDefinition(
            f"{name}-alerts",
            workspace_id=workspace.id,
            definition=args.topic_arn.apply(
                lambda arn: alertmanager_definition(topic_arn=arn, region=config.region)
            ),
            # Publishing needs the topic's permission first.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]),
        )
        self.workspace_id = workspace.id
        self.query_url = pulumi.Output.concat(workspace.prometheus_endpoint, QUERY_API_SUFFIX)
        self.register_outputs({"workspaceId": self.workspace_id, "queryUrl": self.query_url})
