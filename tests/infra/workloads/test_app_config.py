"""The app namespace, its service accounts and the environment every app container shares
(stack/workloads/app_config.py): config values reach the ConfigMap, nothing secret leaves the Secret."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from stack.config.model import StackConfig
from stack.config.names import MIGRATE, WEB, WORKER
from stack.config.rules import parse_stack_config
from stack.workloads import app_config
from stack.workloads.app_config import PLACEHOLDER_SECRETS, SECRET_KEYS, allowed_hosts
from stack.workloads.pods import CONFIG_MAP, SECRET
from tests.infra.support.stack_files import project_config
from tests.infra.support.manifests import ALB_DNS, find, render


def test_app_settings_follow_config(stack_config: StackConfig) -> None:
    data = find(render(stack_config), "ConfigMap", CONFIG_MAP)["data"]
    assert data["DJANGO_SETTINGS_MODULE"] == "config.settings.production"
    assert data["DJANGO_ALLOWED_HOSTS"].split(",") == [ALB_DNS]
    assert data["DJANGO_CSRF_TRUSTED_ORIGINS"] == f"http://{ALB_DNS}"
    # A stack with a certificate serves HTTPS, and Django redirects plain requests to it.
    https = stack_config.load_balancer.certificate_arn is not None
    assert data["DJANGO_SECURE_SSL_REDIRECT"] == ("true" if https else "false")
    assert data["CELERY_TASK_TIME_LIMIT"] == str(stack_config.worker.task_time_limit_seconds)
    assert data["CELERY_VISIBILITY_TIMEOUT"] == str(stack_config.worker.visibility_timeout_seconds)
    assert data["CELERY_HEARTBEAT_FILE"] == "/tmp/celery-worker-heartbeat"
    assert all(isinstance(value, str) for value in data.values())


def test_the_load_test_endpoint_is_off_unless_the_stack_asks() -> None:
    def api_io(**web: object) -> str:
        config = parse_stack_config({"web": web})
        return find(render(config), "ConfigMap", CONFIG_MAP)["data"]["API_IO_ENABLED"]

    assert api_io() == "false"
    assert api_io(loadTestEndpoint=True) == "true"
    # The experiment stack measures it with `make load`; production keeps it off.
    assert parse_stack_config(project_config("exp-c5-workers")).web.load_test_endpoint
    assert not parse_stack_config(project_config("prod")).web.load_test_endpoint


def test_allowed_hosts_include_a_custom_domain() -> None:
    assert allowed_hosts(ALB_DNS, f"http://{ALB_DNS}") == [ALB_DNS]
    assert allowed_hosts(ALB_DNS, "https://app.example.com/") == [ALB_DNS, "app.example.com"]


def test_ssl_redirect_only_with_a_certificate() -> None:
    config = parse_stack_config(
        {
            "loadBalancer": {
                "certificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/"
                "0123abcd-0123-4567-89ab-0123456789ab",
                "domainName": "app.example.com",
            }
        }
    )
    data = find(render(config, app_url="https://app.example.com"), "ConfigMap", CONFIG_MAP)["data"]
    assert data["DJANGO_SECURE_SSL_REDIRECT"] == "true"
    assert data["DJANGO_CSRF_TRUSTED_ORIGINS"] == "https://app.example.com"


def test_namespace_enforces_restricted_pod_security_and_readiness_gates(stack_config: StackConfig) -> None:
    labels = find(render(stack_config), "Namespace")["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert labels["pod-security.kubernetes.io/enforce-version"] == f"v{stack_config.cluster.version}"
    assert labels["elbv2.k8s.aws/pod-readiness-gate-inject"] == "enabled"


def test_service_accounts_mount_no_token(stack_config: StackConfig) -> None:
    accounts = [o for o in render(stack_config) if o["kind"] == "ServiceAccount"]
    assert {a["metadata"]["name"] for a in accounts} == {
        WEB, WORKER, MIGRATE, "reconciler", *(["beat"] if stack_config.beat else [])
    }  # fmt: skip
    assert all(a["automountServiceAccountToken"] is False for a in accounts)


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from strings(v)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def test_nothing_secret_outside_the_secret(stack_config: StackConfig) -> None:
    manifests = render(stack_config)
    secret_parts = {
        "placeholder-django-secret-key",
        "placeholder-database-password",
        "placeholder-redis-token",
    }
    for part in secret_parts:
        assert any(part in value for value in PLACEHOLDER_SECRETS.values())
    for o in manifests:
        if o["kind"] == "Secret":
            continue
        leaked = [s for s in strings(o) for part in secret_parts if part in s]
        assert not leaked, f"{o['kind']} {o['metadata']['name']} holds {leaked}"
    secret = find(manifests, "Secret", SECRET)
    assert set(secret["stringData"]) == set(SECRET_KEYS)
    config_keys = set(find(manifests, "ConfigMap", CONFIG_MAP)["data"])
    assert not config_keys & set(SECRET_KEYS)


def test_secret_needs_every_value() -> None:
    with pytest.raises(ValueError, match="REDIS_URL"):
        app_config.secret({"DJANGO_SECRET_KEY": "x", "DATABASE_URL": "y"})
