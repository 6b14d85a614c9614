"""The app's own domain: what clients use with HTTPS, so Django, the outputs and DNS must use it.

A certificate names the app's domain, not the ALB's `*.elb.amazonaws.com` name: through the ALB's
name TLS fails, so every client comes through the domain, with `Host: <domain>` and, from a
browser, `Origin: https://<domain>`. Django answers 400 to a Host outside ALLOWED_HOSTS
(django/http/request.py, HttpRequest.get_host: "Invalid HTTP_HOST header ... You may need to add
... to ALLOWED_HOSTS" -> DisallowedHost -> 400) and rejects an unsafe request whose Origin is
neither the request's own https://<host> nor in CSRF_TRUSTED_ORIGINS
(django/middleware/csrf.py, CsrfViewMiddleware._origin_verified).
"""

from __future__ import annotations

import copy
import os
import ssl
import subprocess
import sys
from typing import Any

import pytest

from stack.config.rules import StackConfigError, parse_stack_config
from stack.platform.load_balancer import alias_record_types
from stack.tools.offline import REPO_ROOT, OfflineRun
from tests.infra.support.stack_files import project_config, run_edited

SERVICE_DIR = REPO_ROOT / "service"
DOMAIN = "app.example.com"
ZONE = "Z0123456789ABCDEFGHIJ"


def _with_zone(raw: dict[str, Any]) -> None:
    raw["django-eks:loadBalancer"]["hostedZoneId"] = ZONE


_run: list[OfflineRun] = []


def prod_with_zone() -> OfflineRun:
    """prod (certificate and domainName) with a hosted zone, run once per session."""
    if not _run:
        _run.append(run_edited(_with_zone, base="prod"))
    return _run[0]


def pod_environment(run: OfflineRun) -> dict[str, str]:
    """The environment the program renders for the app pods: the ConfigMap's data, and test
    values for what the Secret and the image provide."""
    (config_map,) = [
        r for r in run.of_type("kubernetes:core/v1:ConfigMap") if "DJANGO_ALLOWED_HOSTS" in (r.inputs.get("data") or {})
    ]
    paths = ssl.get_default_verify_paths()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "CELERY_", "JOBS_", "AWS_"))}
    env.update(config_map.inputs["data"])
    env.update(
        PYTHONPATH=str(SERVICE_DIR),
        DJANGO_SECRET_KEY="a-test-secret-key-that-is-long-enough-for-the-deploy-checks-0123",
        DATABASE_URL="postgres://app:pw@db.internal:5432/app?sslmode=require",
        REDIS_URL="rediss://:an-auth-token-0123456789@redis.internal:6379/0?ssl_cert_reqs=required",
        # The image carries the RDS bundle there; any real CA bundle stands in for it.
        DATABASE_CA_BUNDLE=str(paths.cafile or paths.openssl_cafile),
    )
    return env


# A POST through the real settings and middleware (ALLOWED_HOSTS, the HTTPS redirect, CSRF) to a
# view that is not CSRF-exempt, as a browser on the domain sends it behind the ALB (which adds
# X-Forwarded-Proto). Prints the status code of each (host, origin) pair (the app logs to stdout too).
CLIENT = """
import sys, types
import django
django.setup()
from django.http import HttpResponse
from django.test import Client
from django.test.utils import override_settings
from django.urls import path

def submit(request):
    return HttpResponse("accepted")

urls = types.ModuleType("csrf_checked_urls")
urls.urlpatterns = [path("submit", submit)]
sys.modules["csrf_checked_urls"] = urls
token = "k" * 32
with override_settings(ROOT_URLCONF="csrf_checked_urls"):
    for pair in sys.argv[1:]:
        host, origin = pair.split(" ")
        client = Client(enforce_csrf_checks=True)
        client.cookies["csrftoken"] = token
        response = client.post("/submit", HTTP_HOST=host, HTTP_ORIGIN=origin,
                               HTTP_X_FORWARDED_PROTO="https", HTTP_X_CSRFTOKEN=token)
        print("status", response.status_code)
"""


def post_statuses(env: dict[str, str], *pairs: tuple[str, str]) -> list[int]:
    result = subprocess.run(
        [sys.executable, "-c", CLIENT, *(f"{host} {origin}" for host, origin in pairs)],
        cwd=SERVICE_DIR, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return [int(line.split()[1]) for line in result.stdout.splitlines() if line.startswith("status ")]


def test_django_serves_the_domain_with_the_environment_the_program_renders() -> None:
    run = prod_with_zone()
    statuses = post_statuses(
        pod_environment(run),
        (DOMAIN, f"https://{DOMAIN}"),
        # The check is real: another site's page, or another host, is refused.
        (DOMAIN, "https://attacker.example.net"),
        ("attacker.example.net", "https://attacker.example.net"),
    )
    assert statuses == [200, 403, 400]


def test_app_url_is_the_domain() -> None:
    assert prod_with_zone().outputs["appUrl"] == f"https://{DOMAIN}"


def test_the_domain_points_at_the_alb_when_a_hosted_zone_is_given() -> None:
    """An alias A record in the zone, to the ALB's name in the ALB's own hosted zone
    (https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/resource-record-sets-values-alias.html:
    for an ELB, the alias target is the load balancer's DNS name and its canonical hosted zone
    ID). The ALB is IPv4 only (ipAddressType ipv4), so no AAAA record."""
    run = prod_with_zone()
    alb = run.named("aws:lb/loadBalancer:LoadBalancer", "web-alb")
    records = run.of_type("aws:route53/record:Record")
    assert [(r.inputs["type"], r.inputs["name"], r.inputs["zoneId"]) for r in records] == [("A", DOMAIN, ZONE)]
    (alias,) = records[0].inputs["aliases"]
    assert alias["name"] == alb.outputs["dnsName"]
    assert alias["zoneId"] == alb.outputs["zoneId"]
    assert alb.inputs["ipAddressType"] == "ipv4"


def test_a_dualstack_alb_gets_an_aaaa_record_too() -> None:
    assert alias_record_types("ipv4") == ["A"]
    assert alias_record_types("dualstack") == ["A", "AAAA"]
    assert alias_record_types("dualstack-without-public-ipv4") == ["A", "AAAA"]


def _problems(edit: dict[str, Any]) -> dict[str, str]:
    raw = copy.deepcopy(project_config("prod"))
    raw["loadBalancer"] = {**raw["loadBalancer"], **edit}
    raw["loadBalancer"] = {k: v for k, v in raw["loadBalancer"].items() if v is not None}
    with pytest.raises(StackConfigError) as error:
        parse_stack_config(raw)
    return {p.path: p.message for p in error.value.problems}


def test_a_certificate_without_the_domain_is_refused_naming_both_keys() -> None:
    problems = _problems({"domainName": None})
    assert "loadBalancer.certificateArn" in problems["loadBalancer.domainName"]


def test_a_hosted_zone_needs_the_domain() -> None:
    problems = _problems({"domainName": None, "certificateArn": None, "hostedZoneId": ZONE})
    assert "needs loadBalancer.domainName" in problems["loadBalancer.hostedZoneId"]


@pytest.mark.parametrize(
    "bad",
    ["App.Example.com", "https://app.example.com", "app.example.com.", "*.example.com", "localhost",
     "app..example.com", "-app.example.com", "app.example.com:443", "10.0.0.1", f"{'a' * 64}.example.com"],
)
def test_a_domain_that_is_not_a_host_name_is_refused(bad: str) -> None:
    assert "loadBalancer.domainName" in _problems({"domainName": bad})


@pytest.mark.parametrize("bad", ["/hostedzone/Z0123456789", "z0123456789", "Z" * 33])
def test_a_hosted_zone_id_is_checked(bad: str) -> None:
    assert "loadBalancer.hostedZoneId" in _problems({"hostedZoneId": bad})


def test_without_a_certificate_the_domain_is_optional() -> None:
    raw = copy.deepcopy(project_config("dev"))
    config = parse_stack_config(raw)
    assert config.load_balancer.domain_name is None
