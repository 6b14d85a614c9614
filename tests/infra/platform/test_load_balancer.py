"""The load balancer (stack/platform/load_balancer.py): public, HTTPS with a certificate, the only
thing open to the internet; and a replaced target group gets traffic only once it has healthy
targets.

The rules this reproduces:
- What replaces the group: the API modifies only a group's health checks and attributes
  (https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_ModifyTargetGroup.html),
  so its port, protocol, target type, VPC and name can only change with a new group; the program
  sets the first three from `TARGET_GROUP`.
- How Pulumi replaces it: create-before-delete by default. "first creates a new instance of the
  resource, then updates all dependent resources to point to the new one, and finally after all
  of that, deletes the old resource" (pulumi/pulumi pkg/resource/deploy/step_generator.go:2030-2035);
  the old one's delete step "is generated later on, after all creates/updates finish" (:2164-2169).
- When a dependent moves: the Python SDK registers a resource only after awaiting the URNs of
  its dependencies (sdk/python/lib/pulumi/runtime/resource.py:215 and :301, `depends_on` and the
  resources behind its input Outputs), and a URN resolves when the engine answers the
  registration (:918), i.e. after that resource's step (the Deployment's rollout await included).
- When a target is healthy: a TargetGroupBinding's readiness gate
  `target-health.elbv2.k8s.aws/<binding>` turns True only for a target in state "healthy"
  (aws-load-balancer-controller pkg/targetgroupbinding/resource_manager.go:515-527,
  calculateReadinessGateTransition), the webhook injects it only into pods created while the
  binding exists, and a pod is Ready only when all its gates are
  (https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#pod-readiness-gate).
- A group no load balancer uses is not health-checked (its targets stay "unused",
  Target.NotInUse), so the new group must be attached before the public listeners use it.
- One binding per group: the controller's webhook refuses a second binding of the same target
  group (webhooks/elbv2/targetgroupbinding_validator.go:204-226, checkExistingTargetGroups).
"""

from __future__ import annotations

from typing import Any

import pytest

from stack.config.names import WEB
from stack.platform import load_balancer as lb
from tests.infra.support.network import INGRESS, subnet_ids
from tests.infra.support.dependencies import comes_after
from tests.infra.support.stack_files import STACKS, run_edited, stack_run

ALB = "aws:lb/loadBalancer:LoadBalancer"
LISTENER = "aws:lb/listener:Listener"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
CERT = "arn:aws:acm:us-east-1:123456789012:certificate/12345678-1234-1234-1234-123456789012"
TARGET_GROUP = "aws:lb/targetGroup:TargetGroup"
BINDING = "kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_public_listeners_switch_after_the_new_group_has_healthy_targets(stack: str) -> None:
    run = stack_run(stack)
    (group,) = run.of_type(TARGET_GROUP)
    (binding,) = run.of_type(BINDING)
    web = run.named(DEPLOYMENT, "app-web")
    forwarding = [
        r for r in run.of_type(LISTENER)
        if r.inputs["port"] != lb.STANDBY_PORT and r.inputs["defaultActions"][0]["type"] == "forward"
    ]
    assert forwarding, "no public listener forwards to the target group"
    # The binding registers the pods in the (new) group; the web rollout, whose new pods carry
    # that binding's readiness gate, comes after it; the public listeners after the rollout.
    assert binding.inputs["spec"]["targetGroupARN"] == group.outputs["arn"]
    assert comes_after(run, binding, group)
    assert comes_after(run, web, binding)
    for listener in forwarding:
        assert listener.inputs["defaultActions"][0]["targetGroupArn"] == group.outputs["arn"]
        assert comes_after(run, listener, web), listener.inputs["port"]


def test_the_new_group_is_health_checked_before_the_switch() -> None:
    """The standby listener attaches the group as soon as it exists, without waiting for the
    app, so its targets can become healthy while the public listeners still use the old one.
    Its port is not open to anyone."""
    run = stack_run("prod")
    (group,) = run.of_type(TARGET_GROUP)
    (standby,) = [r for r in run.of_type(LISTENER) if r.inputs["port"] == lb.STANDBY_PORT]
    assert standby.inputs["defaultActions"] == [{"type": "forward", "targetGroupArn": group.outputs["arn"]}]
    assert comes_after(run, standby, group)
    assert not comes_after(run, standby, run.named(DEPLOYMENT, "app-web"))
    public = sorted(
        r.inputs["fromPort"] for r in run.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
        if r.inputs.get("cidrIpv4") == "0.0.0.0/0"
    )
    assert lb.STANDBY_PORT not in public


def test_the_old_group_keeps_its_targets_until_the_switch() -> None:
    """The binding is replaced create-before-delete (so the old one, with the old group's
    targets, is deleted only after the listeners moved), which the webhook allows only because
    the new binding has another name."""
    run = stack_run("prod")
    (binding,) = run.of_type(BINDING)
    assert binding.delete_before_replace is False
    assert "spec.targetGroupARN" in binding.replace_on_changes
    assert binding.inputs["metadata"]["name"] == lb.target_group_binding_name(lb.TARGET_GROUP)


def test_a_replaced_group_gets_a_binding_of_another_name_and_rolls_the_web_pods(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Today's group keeps the name its binding has in existing stacks.
    assert lb.target_group_binding_name(lb.TARGET_GROUP) == WEB
    monkeypatch.setitem(lb.TARGET_GROUP, "port", 8001)  # a replacing input changes
    new_name = lb.target_group_binding_name(lb.TARGET_GROUP)
    assert new_name != WEB
    assert new_name == lb.target_group_binding_name(dict(lb.TARGET_GROUP))  # stable across runs

    run = run_edited(lambda raw: None, base="dev")
    (group,) = run.of_type(TARGET_GROUP)
    assert group.inputs["port"] == 8001
    (binding,) = run.of_type(BINDING)
    assert binding.inputs["metadata"]["name"] == new_name
    annotations = run.named(DEPLOYMENT, "app-web").inputs["spec"]["template"]["metadata"]["annotations"]
    # A changed pod template: the pods are recreated, after the new binding exists, so they
    # carry its readiness gate and the rollout waits for them to be healthy in the new group.
    assert annotations["django-eks/target-group-binding"] == new_name


def test_today_s_group_does_not_roll_the_web_pods() -> None:
    annotations = stack_run("dev").named(DEPLOYMENT, "app-web").inputs["spec"]["template"]["metadata"]["annotations"]
    assert "django-eks/target-group-binding" not in annotations


def test_the_namespace_injects_the_readiness_gates() -> None:
    (namespace,) = stack_run("prod").of_type("kubernetes:core/v1:Namespace")
    assert namespace.inputs["metadata"]["labels"]["elbv2.k8s.aws/pod-readiness-gate-inject"] == "enabled"


# --- the load balancer and its listeners ---------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_alb_is_public_with_the_configured_idle_timeout(stack: str) -> None:
    run = stack_run(stack)
    alb = run.named(ALB, "web-alb").inputs
    assert alb["idleTimeout"] == run.config.load_balancer.idle_timeout_seconds
    assert alb["internal"] is False
    assert set(alb["subnets"]) == subnet_ids(run, "public")
    target_group = run.named("aws:lb/targetGroup:TargetGroup", "web-tg").inputs
    assert target_group["targetType"] == "ip"
    assert target_group["port"] == 8000
    assert target_group["healthCheck"]["path"] == "/healthz"


def test_without_a_certificate_the_alb_serves_plain_http() -> None:
    (listener,) = [r for r in stack_run("dev").of_type(LISTENER) if r.inputs["port"] != lb.STANDBY_PORT]
    assert (listener.inputs["port"], listener.inputs["protocol"]) == (80, "HTTP")
    assert listener.inputs["defaultActions"][0]["type"] == "forward"
    assert stack_run("dev").outputs["appUrl"].startswith("http://")


def test_with_a_certificate_https_serves_and_http_redirects() -> None:
    def with_cert(raw: dict[str, Any]) -> None:
        raw["django-eks:loadBalancer"]["certificateArn"] = CERT
        raw["django-eks:loadBalancer"]["domainName"] = "app.example.com"

    run = run_edited(with_cert)
    listeners = {r.inputs["port"]: r.inputs for r in run.of_type(LISTENER)}
    assert listeners[443]["protocol"] == "HTTPS"
    assert listeners[443]["certificateArn"] == CERT
    assert listeners[443]["defaultActions"][0]["type"] == "forward"
    assert listeners[80]["defaultActions"][0]["redirect"]["protocol"] == "HTTPS"
    assert run.outputs["appUrl"] == "https://app.example.com"
    ports = sorted(r.inputs["fromPort"] for r in run.of_type(INGRESS) if r.inputs.get("cidrIpv4"))
    assert ports == [80, 443]


@pytest.mark.parametrize("stack", STACKS)
def test_only_the_alb_is_open_to_the_internet_and_only_on_http_ports(stack: str) -> None:
    run = stack_run(stack)
    alb_group = "web-alb-placeholder-id"
    for group in run.of_type("aws:ec2/securityGroup:SecurityGroup"):
        for rule in group.inputs.get("ingress", []):
            assert "0.0.0.0/0" not in rule.get("cidrBlocks", [])
    for rule in run.of_type(INGRESS):
        if rule.inputs.get("cidrIpv4") == "0.0.0.0/0" or rule.inputs.get("cidrIpv6") == "::/0":
            assert rule.inputs["securityGroupId"] == alb_group
            assert rule.inputs["fromPort"] == rule.inputs["toPort"]
            assert rule.inputs["fromPort"] in (80, 443)
    (egress,) = (rule for rule in run.of_type(EGRESS) if rule.inputs["securityGroupId"] == alb_group)
    assert (egress.inputs["fromPort"], egress.inputs["toPort"]) == (8000, 8000)
    assert egress.inputs["referencedSecurityGroupId"] == "sg-placeholder-cluster"


def test_an_apps_health_path_is_what_the_alb_checks() -> None:
    def health(raw: dict[str, Any]) -> None:
        raw["django-eks:app"]["healthPath"] = "/-/ready"

    (target_group,) = run_edited(health, base="exp-example").of_type("aws:lb/targetGroup:TargetGroup")
    assert target_group.inputs["healthCheck"]["path"] == "/-/ready"
