"""The app's metrics in Amazon Managed Service for Prometheus (stack/platform/prometheus.py): the
collector finds exactly the app's metrics endpoints of the rendered pods, the network lets it reach
them and nothing else, the rules are valid PromQL over the app's own metric names with the stack's
thresholds, the alert manager publishes to the alarm topic, which lets AMP publish, and the off
switches remove all of it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from stack.config.names import BEAT, NAMESPACE, WEB
from stack.config.rules import StackConfigError
from stack.config.workers import worker_deployments
from stack.model.app_metrics import APP_METRICS
from stack.model.observability import QUEUE_WAIT_ALERT, TASK_FAILURE_ALERT
from stack.model.scaling_delays import (
    CLUSTER_AUTOSCALER_SCAN_SECONDS,
    HPA_SYNC_PERIOD_SECONDS,
    NODE_READY_SECONDS,
    POLLING_INTERVAL_SECONDS,
)
from stack.tools.offline import OfflineRun
from tests.infra.support.configs import small_config
from tests.infra.support.manifests import render
from tests.infra.support.stack_files import STACKS, run_edited, stack_run

WORKSPACE = "aws:amp/workspace:Workspace"
SCRAPER = "aws:amp/scraper:Scraper"
RULES = "aws:amp/ruleGroupNamespace:RuleGroupNamespace"
ALERT_MANAGER = "aws:amp/alertManagerDefinition:AlertManagerDefinition"
TOPIC_POLICY = "aws:sns/topicPolicy:TopicPolicy"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
AMP_TYPES = {WORKSPACE, SCRAPER, RULES, ALERT_MANAGER, TOPIC_POLICY}

# --- Prometheus relabeling, as its configuration documents it -----------------------------
# https://prometheus.io/docs/prometheus/latest/configuration/configuration/#relabel_config:
# source label values joined by `separator` (";"), `regex` fully anchored (default "(.*)"),
# `replace` writes `replacement` (default "$1") with the groups expanded to `target_label` when the
# regex matches, `keep` drops targets whose joined value does not match. Labels starting with
# "__" are dropped after relabeling, except __address__ and __metrics_path__ which make the URL.


def relabel(target: dict[str, str], rules: list[dict[str, Any]]) -> dict[str, str] | None:
    labels = dict(target)
    for rule in rules:
        value = rule.get("separator", ";").join(labels.get(s, "") for s in rule.get("source_labels", []))
        match = re.fullmatch(rule.get("regex", "(.*)"), value)
        action = rule.get("action", "replace")
        if action == "keep":
            if match is None:
                return None
        elif action == "replace":
            if match is not None:
                replacement = re.sub(r"\$(\d+)", lambda m: match.group(int(m.group(1))) or "", rule.get("replacement", "$1"))
                labels[rule["target_label"]] = replacement
        else:
            raise AssertionError(f"relabel action {action} is not modelled here")
    return labels


def discovered_targets(manifests: list[dict[str, Any]], pod_ip: str = "10.0.64.7") -> list[dict[str, str]]:
    """What kubernetes_sd_config (role: pod) yields for one pod of each rendered workload: a target
    per declared container port, and one per container without ports."""
    targets = []
    for o in manifests:
        if o["kind"] not in ("Deployment", "StatefulSet"):
            continue
        template = o["spec"]["template"]
        base = {
            "__meta_kubernetes_namespace": o["metadata"]["namespace"],
            "__meta_kubernetes_pod_name": f"{o['metadata']['name']}-abc12",
            "__meta_kubernetes_pod_ip": pod_ip,
            **{
                "__meta_kubernetes_pod_annotation_" + re.sub(r"[^a-zA-Z0-9_]", "_", k): v
                for k, v in template["metadata"].get("annotations", {}).items()
            },
            **{
                "__meta_kubernetes_pod_label_" + re.sub(r"[^a-zA-Z0-9_]", "_", k): v
                for k, v in template["metadata"]["labels"].items()
            },
        }
        for container in template["spec"]["containers"]:
            ports = container.get("ports") or [None]
            for port in ports:
                target = {**base, "__meta_kubernetes_pod_container_name": container["name"]}
                if port is None:
                    target["__address__"] = pod_ip
                else:
                    target["__address__"] = f"{pod_ip}:{port['containerPort']}"
                    target["__meta_kubernetes_pod_container_port_name"] = port.get("name", "")
                    target["__meta_kubernetes_pod_container_port_number"] = str(port["containerPort"])
                targets.append({**target, "workload": o["metadata"]["name"]})
    return targets


def scrape_config(run: OfflineRun) -> dict[str, Any]:
    (scraper,) = run.of_type(SCRAPER)
    document: dict[str, Any] = yaml.safe_load(scraper.inputs["scrapeConfiguration"])
    return document


@pytest.mark.parametrize("stack", STACKS)
def test_the_collector_scrapes_each_web_and_worker_pod_once_on_its_metrics_endpoint(stack: str) -> None:
    run = stack_run(stack)
    document = scrape_config(run)
    (job,) = document["scrape_configs"]
    assert job["kubernetes_sd_configs"] == [{"role": "pod", "namespaces": {"names": [NAMESPACE]}}]
    interval = f"{run.config.observability.metrics.scrape_interval_seconds}s"
    assert document["global"]["scrape_interval"] == job["scrape_interval"] == interval
    manifests = render(run.config)
    scraped = [t for t in (relabel(t, job["relabel_configs"]) for t in discovered_targets(manifests)) if t]
    expected = {WEB: "10.0.64.7:8001", **{d.name: "10.0.64.7:9100" for d in worker_deployments(run.config)}}
    assert {t["workload"]: t["__address__"] for t in scraped} == expected
    assert len(scraped) == len(expected)  # one target per pod: not the proxy's port, not beat
    for target in scraped:
        assert target["__metrics_path__"] == "/metrics"
        assert target["namespace"] == NAMESPACE
        assert target["pod"] == f"{target['workload']}-abc12"
        assert target["container"] in (WEB, "worker")
        assert target["component"] in (WEB, "worker")
    if run.config.beat is not None:
        assert BEAT not in {t["workload"] for t in scraped}


@pytest.mark.parametrize("stack", STACKS)
def test_the_collector_sits_in_the_private_subnets_and_reaches_only_the_metrics_ports_and_the_api(stack: str) -> None:
    run = stack_run(stack)
    (scraper,) = run.of_type(SCRAPER)
    eks = scraper.inputs["source"]["eks"]
    (cluster,) = run.of_type("aws:eks/cluster:Cluster")
    assert eks["clusterArn"] == cluster.outputs["arn"]
    assert sorted(eks["subnetIds"]) == sorted(cluster.inputs["vpcConfig"]["subnetIds"])
    (group,) = eks["securityGroupIds"]
    (workspace,) = run.of_type(WORKSPACE)
    assert scraper.inputs["destination"]["amp"]["workspaceArn"] == workspace.outputs["arn"]
    out = sorted((r.inputs["fromPort"], r.inputs["toPort"], r.inputs["referencedSecurityGroupId"])
                 for r in run.of_type(EGRESS) if r.inputs["securityGroupId"] == group)
    assert out == [(p, p, "sg-placeholder-cluster") for p in (443, 8001, 9100)]
    into_cluster = sorted((r.inputs["fromPort"], r.inputs["toPort"])
                          for r in run.of_type(INGRESS) if r.inputs.get("referencedSecurityGroupId") == group)
    assert into_cluster == [(443, 443), (8001, 8001), (9100, 9100)]
    # The pods' policies admit the private subnets on the metrics port only.
    layout_private = {b["ipBlock"]["cidr"] for b in next(
        p for p in render(run.config) if p["kind"] == "NetworkPolicy" and p["metadata"]["name"] == "web-metrics"
    )["spec"]["ingress"][0]["from"]}
    for name, port in (("web-metrics", 8001), ("worker-metrics", 9100)):
        policy = next(p for p in render(run.config) if p["kind"] == "NetworkPolicy" and p["metadata"]["name"] == name)
        (rule,) = policy["spec"]["ingress"]
        assert rule["ports"] == [{"protocol": "TCP", "port": port}]
        assert {b["ipBlock"]["cidr"] for b in rule["from"]} == layout_private
    assert len(layout_private) == run.config.network.az_count


def rules_file(run: OfflineRun) -> dict[str, Any]:
    (namespace,) = run.of_type(RULES)
    document: dict[str, Any] = yaml.safe_load(namespace.inputs["data"])
    return document


@pytest.mark.parametrize("stack", STACKS)
def test_the_rules_are_valid_promql_over_the_apps_own_metrics(stack: str, tmp_path: Path) -> None:
    run = stack_run(stack)
    (namespace,) = run.of_type(RULES)
    path = tmp_path / "rules.yaml"
    path.write_text(namespace.inputs["data"])
    promtool = shutil.which("promtool")
    assert promtool, "promtool (Debian package prometheus) is needed: make test installs it"
    checked = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    names = set()
    for rule in rules_file(run)["groups"][0]["rules"]:
        names |= set(re.findall(r"\b([a-z_]+)(?=\{|\[)", rule["expr"]))
    names -= {"rate"}
    suffixed = {n.removesuffix("_bucket") for n in names}
    assert suffixed and suffixed <= set(APP_METRICS)


def test_a_broken_rule_is_what_promtool_refuses(tmp_path: Path) -> None:
    # The check above can fail: an expression Prometheus cannot parse is refused.
    promtool = shutil.which("promtool")
    assert promtool
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "x", "rules": [{"alert": "A", "expr": "rate(x[5m]"}]}]}))
    assert subprocess.run([promtool, "check", "rules", str(path)], capture_output=True).returncode != 0


@pytest.mark.parametrize("stack", STACKS)
def test_each_queue_alerts_on_its_p95_wait_above_the_autoscalers_reaction(stack: str) -> None:
    run = stack_run(stack)
    rules = rules_file(run)["groups"][0]["rules"]
    waits = {r["labels"]["queue"]: r for r in rules if r["alert"] == QUEUE_WAIT_ALERT}
    queues = {q: d for d in worker_deployments(run.config) for q in d.queues}
    assert set(waits) == set(queues)
    for queue, rule in waits.items():
        scaling = queues[queue].spec.autoscaling
        reaction = POLLING_INTERVAL_SECONDS if scaling.min_replicas == 0 else HPA_SYNC_PERIOD_SECONDS
        target = reaction + CLUSTER_AUTOSCALER_SCAN_SECONDS + NODE_READY_SECONDS
        assert rule["expr"].startswith("histogram_quantile(0.95, ")
        assert f'queue="{queue}"' in rule["expr"] and rule["expr"].endswith(f"> {target}")
    (failures,) = [r for r in rules if r["alert"] == TASK_FAILURE_ALERT]
    assert failures["expr"].endswith(f"> {run.config.observability.thresholds.task_failure_percent:g}")
    assert 'outcome="failed"' in failures["expr"] and 'outcome=~"succeeded|failed"' in failures["expr"]


def test_configured_thresholds_replace_the_derived_ones() -> None:
    run = run_edited(lambda raw: raw.update({"django-eks:observability": {
        "thresholds": {"queueWaitP95Seconds": {"jobs": 42}, "taskFailurePercent": 2.5}}}))
    rules = rules_file(run)["groups"][0]["rules"]
    (wait,) = [r for r in rules if r["alert"] == QUEUE_WAIT_ALERT]
    assert wait["expr"].endswith("> 42")
    (failures,) = [r for r in rules if r["alert"] == TASK_FAILURE_ALERT]
    assert failures["expr"].endswith("> 2.5")


@pytest.mark.parametrize(
    ("observability", "key"),
    [
        ({"thresholds": {"queueWaitP95Seconds": {"nope": 10}}}, "observability.thresholds.queueWaitP95Seconds.nope"),
        ({"thresholds": {"queueWaitP95Seconds": {"jobs": 0}}}, "observability.thresholds.queueWaitP95Seconds"),
        ({"thresholds": {"taskFailurePercent": 0}}, "observability.thresholds.taskFailurePercent"),
        ({"metrics": {"scrapeIntervalSeconds": 15}}, "observability.metrics.scrapeIntervalSeconds"),
        ({"metrics": {"interval": 30}}, "observability.metrics.interval"),
    ],
)
def test_bad_metrics_config_names_the_key(observability: dict[str, Any], key: str) -> None:
    with pytest.raises(StackConfigError) as error:
        small_config(observability=observability)
    assert [p.path for p in error.value.problems] == [key]


@pytest.mark.parametrize("stack", STACKS)
def test_the_alert_manager_publishes_to_the_alarm_topic_which_lets_amp_publish(stack: str) -> None:
    run = stack_run(stack)
    topic = run.named("aws:sns/topic:Topic", "watch-alarms").outputs["arn"]
    (workspace,) = run.of_type(WORKSPACE)
    (manager,) = run.of_type(ALERT_MANAGER)
    (namespace,) = run.of_type(RULES)
    assert workspace.outputs["arn"].endswith(f"workspace/{manager.inputs['workspaceId']}")
    assert namespace.inputs["workspaceId"] == manager.inputs["workspaceId"]
    definition = yaml.safe_load(manager.inputs["definition"])
    assert set(definition) == {"alertmanager_config"}
    config = yaml.safe_load(definition["alertmanager_config"])
    (receiver,) = config["receivers"]
    assert config["route"]["receiver"] == receiver["name"]
    (sns,) = receiver["sns_configs"]
    assert sns["topic_arn"] == topic and sns["sigv4"] == {"region": run.config.region}
    assert not {"api_url", "http_config"} & set(sns)  # AMP refuses them
    (policy,) = run.of_type(TOPIC_POLICY)
    assert policy.inputs["arn"] == topic
    statements = {s["Sid"]: s for s in json.loads(policy.inputs["policy"])["Statement"]}
    aps = statements["Allow_Publish_Alarms"]
    assert aps["Principal"] == {"Service": "aps.amazonaws.com"} and "sns:Publish" in aps["Action"]
    assert aps["Condition"]["ArnEquals"]["aws:SourceArn"] == workspace.outputs["arn"]
    assert aps["Resource"] == topic
    # The account's own principals (its CloudWatch alarms) keep the topic's default access.
    owner = statements["__default_statement_ID"]
    assert "SNS:Publish" in owner["Action"] and owner["Condition"]["StringEquals"]["AWS:SourceOwner"] == topic.split(":")[4]
    assert manager.dependencies and any(policy.urn == d for d in manager.dependencies)


@pytest.mark.parametrize("stack", STACKS)
def test_the_query_url_is_the_workspaces_prometheus_api(stack: str) -> None:
    run = stack_run(stack)
    (workspace,) = run.of_type(WORKSPACE)
    url = run.outputs["prometheusQueryUrl"]
    assert url == workspace.outputs["prometheusEndpoint"] + "api/v1/"
    assert re.fullmatch(rf"https://aps-workspaces\.{run.region}\.amazonaws\.com/workspaces/[^/]+/api/v1/", url)


def test_the_off_switches_remove_the_metrics_side() -> None:
    for observability in ({"enabled": False}, {"metrics": {"enabled": False}}):
        run = run_edited(lambda raw: raw.update({"django-eks:observability": observability}))
        assert not {r.type for r in run.resources} & AMP_TYPES
        assert "prometheusQueryUrl" not in run.outputs
        names = {p["metadata"]["name"] for p in render(run.config) if p["kind"] == "NetworkPolicy"}
        assert not {"web-metrics", "worker-metrics"} & names
        assert not [r for r in run.of_type(INGRESS) if "collector" in r.name or "cluster-in" in r.name]
    # The CloudWatch side stays without the metrics.
    run = run_edited(lambda raw: raw.update({"django-eks:observability": {"metrics": {"enabled": False}}}))
    assert run.of_type("aws:sns/topic:Topic") and not run.of_type(TOPIC_POLICY)


@pytest.mark.parametrize("stack", STACKS)
def test_the_collectors_cluster_access_is_the_one_amp_creates(stack: str) -> None:
    # AMP creates the collector's access entry itself on a cluster that authenticates with access
    # entries (AMP-collector-how-to.html#AMP-collector-eks-setup); under the ConfigMap alone it
    # would not, and the collector could not discover the pods.
    run = stack_run(stack)
    (cluster,) = run.of_type("aws:eks/cluster:Cluster")
    assert cluster.inputs["accessConfig"]["authenticationMode"] in ("API", "API_AND_CONFIG_MAP")
    # And the collector reaches the API server from the VPC: "The Amazon EKS cluster ... must have its
    # cluster endpoint access control set to include private access" (AMP-collector-how-to.html).
    assert cluster.inputs["vpcConfig"]["endpointPrivateAccess"] is True
    entries = run.of_type("aws:eks/accessEntry:AccessEntry")
    assert not [e for e in entries if "PrometheusScraper" in str(e.inputs.get("principalArn"))]


def test_the_alert_manager_configuration_is_what_alertmanager_accepts(tmp_path: Path) -> None:
    run = stack_run("dev")
    (manager,) = run.of_type(ALERT_MANAGER)
    amtool = shutil.which("amtool")
    assert amtool, "amtool (Debian package prometheus-alertmanager) is needed: make test installs it"
    path = tmp_path / "alertmanager.yaml"
    path.write_text(yaml.safe_load(manager.inputs["definition"])["alertmanager_config"])
    checked = subprocess.run([amtool, "check-config", str(path)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # And it refuses what is not a configuration: a route to a receiver that does not exist.
    path.write_text(yaml.safe_dump({"route": {"receiver": "nobody"}, "receivers": [{"name": "other"}]}))
    assert subprocess.run([amtool, "check-config", str(path)], capture_output=True).returncode != 0


def test_the_rules_name_the_metrics_the_runtime_serves() -> None:
    # The runtime package implements the platform's table (stack.model.app_metrics): every
    # metric it defines, by name and kind, and nothing else.
    from django_eks_runtime import metrics
    from prometheus_client.metrics import MetricWrapperBase

    served: dict[str, str] = {}
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            kind = value._type  # noqa: SLF001 - the client keeps the kind there
            served[value._name + ("_total" if kind == "counter" else "")] = kind  # noqa: SLF001
    for constant in ("POD_INFO", "QUEUE_LENGTH"):
        served.setdefault(getattr(metrics, constant), "gauge")
    assert served == APP_METRICS
