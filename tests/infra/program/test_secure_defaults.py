"""Secure by default: HTTPS with a current TLS policy, and a prod that is not open as shipped."""

from __future__ import annotations

from typing import Any

import yaml

from stack.config.model import PROJECT
from stack.platform.load_balancer import STANDBY_PORT
from stack.tools.offline import stack_file
from stack.tools.plan.report import plan_stack
from tests.infra.support.stack_files import STACKS, run_edited, stack_run

LISTENER = "aws:lb/listener:Listener"
CERT = "arn:aws:acm:us-east-1:123456789012:certificate/12345678-1234-1234-1234-123456789012"
# AWS's recommended policy for HTTPS listeners (TLS 1.3 and 1.2, restricted ciphers, hybrid
# post-quantum key exchange): Elastic Load Balancing guide, "Security policies".
RECOMMENDED_TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09"


def with_certificate(raw: dict[str, Any]) -> None:
    raw["django-eks:loadBalancer"]["certificateArn"] = CERT
    raw["django-eks:loadBalancer"]["domainName"] = "app.example.com"


def test_with_a_certificate_http_redirects_permanently_and_https_uses_the_recommended_policy() -> None:
    listeners = {r.inputs["port"]: r.inputs for r in run_edited(with_certificate).of_type(LISTENER)}
    assert set(listeners) == {80, 443, STANDBY_PORT}
    https = listeners[443]
    assert (https["protocol"], https["certificateArn"], https["sslPolicy"]) == ("HTTPS", CERT, RECOMMENDED_TLS_POLICY)
    (redirect,) = listeners[80]["defaultActions"]
    assert redirect["type"] == "redirect"
    assert redirect["redirect"] == {"port": "443", "protocol": "HTTPS", "statusCode": "HTTP_301"}


def warnings_about(stack: str, key: str) -> list[str]:
    return [w for w in plan_stack(stack, run_program=False).warnings if w.startswith(f"{key}:")]


def test_a_stack_without_a_certificate_gets_a_plan_warning_naming_the_key() -> None:
    for stack in STACKS:
        config = stack_run(stack).config
        found = warnings_about(stack, "loadBalancer.certificateArn")
        if config.load_balancer.certificate_arn is None:
            assert any("plain HTTP" in w for w in found), (stack, found)
        else:
            assert not any("plain HTTP" in w for w in found)
    assert warnings_about("dev", "loadBalancer.certificateArn")


def test_an_api_endpoint_open_to_the_internet_gets_a_plan_warning() -> None:
    assert any("0.0.0.0/0" in w for w in warnings_about("dev", "cluster.publicAccessCidrs"))
    assert not any("0.0.0.0/0" in w for w in warnings_about("prod", "cluster.publicAccessCidrs"))


def test_the_load_test_endpoint_gets_a_plan_warning_where_it_is_on() -> None:
    assert any("/api/io" in w for w in warnings_about("exp-c5-workers", "web.loadTestEndpoint"))
    assert warnings_about("prod", "web.loadTestEndpoint") == []


def test_prod_as_shipped_serves_no_plain_http_and_keeps_the_api_endpoint_closed() -> None:
    run = stack_run("prod")
    for listener in run.of_type(LISTENER):
        # The standby listener's port is not open in the ALB's security group.
        if listener.inputs["protocol"] == "HTTP" and listener.inputs["port"] != STANDBY_PORT:
            assert [a["type"] for a in listener.inputs["defaultActions"]] == ["redirect"]
    assert run.outputs["appUrl"].startswith("https://")
    cluster = run.named("aws:eks/cluster:Cluster", "eks").inputs["vpcConfig"]
    assert "0.0.0.0/0" not in cluster.get("publicAccessCidrs", [])


def test_prod_stack_file_says_what_to_replace_and_the_plan_reminds_until_it_is() -> None:
    text = stack_file("prod").read_text()
    config = yaml.safe_load(text)["config"]
    assert config[f"{PROJECT}:loadBalancer"]["certificateArn"].startswith("arn:aws:acm:us-east-1:")
    lines = text.splitlines()
    for key in ("certificateArn:", "domainName:", "publicAccessCidrs:"):
        at = next(i for i, line in enumerate(lines) if line.strip().startswith(key))
        comment = " ".join(line for line in lines[at - 4 : at] if line.strip().startswith("#"))
        assert "REPLACE" in comment, key
    assert any("example ARN" in w for w in warnings_about("prod", "loadBalancer.certificateArn"))
    assert any("documentation range" in w for w in warnings_about("prod", "cluster.publicAccessCidrs"))
    assert any("reserved for documentation" in w for w in warnings_about("prod", "loadBalancer.domainName"))
