"""Invalid config never reaches AWS: each problem names its key path, before any resource."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from stack.config.rules import StackConfigError, parse_stack_config
from stack.config.workers import worker_deployments
from stack.tools.offline import RecordedResource
from tests.infra.support.stack_files import STACKS, project_config, run_edited

Edit = Callable[[dict[str, Any]], None]


def _set(path: str, value: Any) -> Edit:
    """An edit of the dev stack: `django-eks:web.threads` = value (dots walk into objects)."""
    key, *rest = path.split(".")

    def edit(raw: dict[str, Any]) -> None:
        target = raw.setdefault(key, {})
        for part in rest[:-1]:
            target = target.setdefault(part, {})
        if rest:
            target[rest[-1]] = value
        else:
            raw[key] = value

    return edit


def _all(*edits: Edit) -> Edit:
    def edit(raw: dict[str, Any]) -> None:
        for each in edits:
            each(raw)

    return edit


INVALID = [
    pytest.param(_set("django-eks:nodePools.default.spotPrice", 1), "nodePools.default.spotPrice", "unknown key", id="unknown-key"),
    pytest.param(_set("django-eks:webServer", {"replicas": 2}), "webServer", "unknown key", id="unknown-section"),
    pytest.param(_set("django-eks:web.replicas", "many"), "web.replicas", "valid integer", id="wrong-type"),
    pytest.param(_set("django-eks:network.azCount", 1), "network.azCount", "greater than or equal to 2", id="too-few-azs"),
    pytest.param(_set("django-eks:network.cidr", "10.0.0.0/8"), "network.cidr", "between /16 and /20", id="cidr-size"),
    pytest.param(_set("django-eks:network.natGateways", "none"), "network.natGateways", "'single' or 'perAz'", id="nat-layout"),
    pytest.param(_set("django-eks:nodePools.default.maxSize", 1), "nodePools.default.maxSize", "maxSize 1 is below desiredSize 2", id="max-below-desired"),
    pytest.param(_set("django-eks:nodePools.default.desiredSize", 0), "nodePools.default.desiredSize", "below minSize 1", id="desired-below-min"),
    pytest.param(_set("django-eks:nodePools.default.instanceType", "m9.huge"), "nodePools.default.instanceType", "known: m4.large, m4.xlarge", id="unknown-instance-type"),
    pytest.param(_set("django-eks:nodePools.default.diskSizeGib", 8), "nodePools.default.diskSizeGib", "greater than or equal to 20", id="disk-too-small"),
    pytest.param(_set("django-eks:nodePools.default.labels", {"bad key!": "x"}), "nodePools.default.labels.bad key!", "not a valid Kubernetes label key", id="bad-label"),
    pytest.param(_set("django-eks:worker.nodePool", "gpu"), "worker.nodePool", "'gpu', which is not configured", id="unknown-pool"),
    pytest.param(_set("django-eks:web.keepAliveSeconds", 55), "web.keepAliveSeconds", "above loadBalancer.idleTimeoutSeconds 55", id="keepalive-vs-idle"),
    pytest.param(_set("django-eks:loadBalancer.idleTimeoutSeconds", 120), "web.keepAliveSeconds", "above loadBalancer.idleTimeoutSeconds 120", id="idle-above-keepalive"),
    pytest.param(_all(_set("django-eks:web.server", "uwsgi"), _set("django-eks:web.keepAliveSeconds", 55)), "web.keepAliveSeconds", "connections uwsgi (--http-keepalive) has closed", id="uwsgi-keepalive-vs-idle"),
    pytest.param(_all(_set("django-eks:web.server", "gunicorn"), _set("django-eks:web.keepAliveSeconds", 30)), "web.keepAliveSeconds", "connections gunicorn (--keep-alive) has closed", id="gunicorn-keepalive-vs-idle"),
    pytest.param(_all(_set("django-eks:web.server", "uwsgi"), _set("django-eks:web.timeoutSeconds", 30)), "web.timeoutSeconds", "uWSGI's --harakiri and must be at least loadBalancer.idleTimeoutSeconds 55", id="uwsgi-harakiri-vs-idle"),
    pytest.param(_all(_set("django-eks:web.server", "granian"), _set("django-eks:web.keepAliveSeconds", 55)), "web.keepAliveSeconds", "connections granian (--http1-header-read-timeout) has closed", id="granian-keepalive-vs-idle"),
    # granian's idle limit is at most 60 s (`granian --help`: --http1-header-read-timeout 1<=x<=60000 ms).
    pytest.param(_set("django-eks:web.keepAliveSeconds", 75), "web.keepAliveSeconds", "above the 60 s granian can keep an idle connection", id="granian-keepalive-above-its-max"),
    pytest.param(_set("django-eks:web.server", "waitress"), "web.server", "'granian', 'gunicorn' or 'uwsgi'", id="unknown-web-server"),
    pytest.param(_set("django-eks:web.threads", 1), "web.threads", "greater than or equal to 2", id="sync-worker"),
    pytest.param(_set("django-eks:web.replicas", 5), "web.replicas", "within autoscaling.minReplicas 1 and autoscaling.maxReplicas 3", id="replicas-outside-hpa"),
    pytest.param(_set("django-eks:web.autoscaling.maxReplicas", 0), "web.autoscaling.maxReplicas", "greater than or equal to 1", id="hpa-max"),
    pytest.param(
        _all(_set("django-eks:worker.concurrency", 2), _set("django-eks:worker.autoscaling.queueLengthPerReplica", 3)),
        "worker.autoscaling", "queueLengthPerReplica 3 must be a multiple of concurrency 2", id="queue-target-vs-concurrency",
    ),
    pytest.param(_set("django-eks:worker.autoscaling.minReplicas", -1), "worker.autoscaling.minReplicas", "greater than or equal to 0", id="worker-min-negative"),
    pytest.param(_set("django-eks:web.autoscaling.minReplicas", 0), "web.autoscaling.minReplicas", "greater than or equal to 1", id="web-never-zero"),
    pytest.param(_set("django-eks:worker.autoscaling.queueLengthPerReplica", 0), "worker.autoscaling.queueLengthPerReplica", "greater than or equal to 1", id="queue-target"),
    pytest.param(_set("django-eks:clusterAutoscaler.expander", "cheapest"), "clusterAutoscaler.expander", "'least-waste'", id="expander"),
    pytest.param(_set("django-eks:clusterAutoscaler.scaleDownUtilizationThreshold", 1.5), "clusterAutoscaler.scaleDownUtilizationThreshold", "less than or equal to 1", id="scale-down-threshold"),
    pytest.param(_set("django-eks:worker.visibilityTimeoutSeconds", 300), "worker.visibilityTimeoutSeconds", "must exceed taskTimeLimitSeconds 300", id="visibility-timeout"),
    pytest.param(_set("django-eks:redis.nodeType", "m5.large"), "redis.nodeType", "cache.<family>.<size>", id="redis-node-type"),
    pytest.param(_set("django-eks:database.backupRetentionDays", 40), "database.backupRetentionDays", "less than or equal to 35", id="backup-days"),
    pytest.param(_set("django-eks:loadBalancer.certificateArn", "arn:aws:iam::1:cert"), "loadBalancer.certificateArn", "not an ACM certificate ARN", id="certificate-arn"),
    pytest.param(
        _set("django-eks:loadBalancer.certificateArn", "arn:aws:acm:eu-west-1:123456789012:certificate/12345678-1234-1234-1234-123456789012"),
        "loadBalancer.certificateArn", "is in region eu-west-1, but the stack is in us-east-1", id="certificate-region",
    ),
    pytest.param(_set("django-eks:cluster.version", "1.20"), "cluster.version", "'1.33', '1.34' or '1.35'", id="k8s-version"),
    pytest.param(_set("django-eks:cluster.publicAccessCidrs", []), "cluster.publicAccessCidrs", "at least one CIDR", id="public-endpoint-cidrs"),
    pytest.param(_set("aws:region", "Europe"), "region", "should match pattern", id="region"),
    pytest.param(
        _set("django-eks:nodePools.default.taints", [{"key": "dedicated", "value": "x", "effect": "NoSchedule"}]),
        "nodePools", "at least one must accept system pods", id="all-pools-tainted",
    ),
]


@pytest.mark.parametrize(("edit", "path", "rule"), INVALID)
def test_invalid_config_is_rejected_with_its_key_path_before_any_resource(
    edit: Edit, path: str, rule: str
) -> None:
    recorded: list[RecordedResource] = []
    with pytest.raises(StackConfigError) as error:
        run_edited(edit, recorded=recorded)
    problems = {p.path: p.message for p in error.value.problems}
    assert path in problems, str(error.value)
    assert rule in problems[path]
    assert f"{path}: " in str(error.value)
    assert recorded == []


def test_every_problem_is_reported_at_once() -> None:
    raw = project_config("dev")
    raw["nodePools"]["default"]["maxSize"] = 0
    raw["nodePools"]["default"]["instanceType"] = "x1.nano"
    with pytest.raises(StackConfigError) as error:
        parse_stack_config(raw)
    assert {p.path for p in error.value.problems} >= {
        "nodePools.default.maxSize",
        "nodePools.default.instanceType",
    }


@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_file_is_valid(stack: str) -> None:
    raw = project_config(stack)
    config = parse_stack_config(raw)
    assert config.web.node_pool in config.node_pools
    assert all(d.spec.node_pool in config.node_pools for d in worker_deployments(config))


def test_defaults_follow_the_seed() -> None:
    config = parse_stack_config({})
    assert config.node_pools["default"].instance_type == "m4.large"
    assert config.web.gunicorn_workers == 1
    assert config.web.threads > 1
    assert config.worker.concurrency == 1
    assert config.web.keep_alive_seconds > config.load_balancer.idle_timeout_seconds
    # docs/web-server.md: the maintained server with the least CPU per request; its idle limit is 60 s.
    assert config.web.server == "granian" and config.web.keep_alive_seconds <= 60


def test_prod_follows_the_seeds_production_answer() -> None:
    raw = project_config("prod")
    config = parse_stack_config(raw)
    assert {pool.instance_type for pool in config.node_pools.values()} == {"m4.large"}
    assert sum(pool.desired_size for pool in config.node_pools.values()) >= 3
    assert config.web.replicas == 3 and config.worker.replicas == 3
    assert config.worker.concurrency == 1 and config.web.gunicorn_workers == 1


# --- the app section ------------------------------------------------------------------------

APP = {"settingsModule": "notes.settings", "wsgi": "notes.wsgi:application", "celery": "notes"}


def _problems(raw: dict[str, Any], **kwargs: Any) -> dict[str, str]:
    with pytest.raises(StackConfigError) as caught:
        parse_stack_config(raw, **kwargs)
    return {p.path: p.message for p in caught.value.problems}


def test_a_demo_setting_beside_an_app_is_an_error_naming_the_key() -> None:
    problems = _problems({
        "app": APP,
        "jobs": {"maxPixels": 2_000_000},
        "reconciler": {"everyMinutes": 5},
        "benchmark": {"fast": True},
        "web": {"loadTestEndpoint": False},
    })
    assert set(problems) == {"jobs", "reconciler", "benchmark", "web.loadTestEndpoint"}
    assert "demo" in problems["jobs"]
    # The same keys without `app` are the demo's, and fine.
    parse_stack_config({"jobs": {"maxPixels": 2_000_000}, "web": {"loadTestEndpoint": True}})


def test_app_keys_are_checked_and_named() -> None:
    problems = _problems({"app": {**APP, "wsgi": "notes.wsgi", "healthPath": "healthz", "env": {"1X": "y"}}})
    assert set(problems) == {"app.wsgi", "app.healthPath", "app.env.1X"}
    assert "<module>:<callable>" in problems["app.wsgi"]
    assert set(_problems({"app": {"wsgi": "a:b"}})) == {"app.settingsModule", "app.celery"}


def test_an_app_may_not_set_what_the_platform_sets() -> None:
    problems = _problems({
        "app": {**APP, "env": {"DATABASE_URL": "x", "WEB_THREADS": "2", "NOTES_PAGE_SIZE": "5"},
                "secrets": {"AWS_SECRET_ACCESS_KEY": {"secure": "v1:x"}}},
    })
    assert set(problems) == {"app.env.DATABASE_URL", "app.env.WEB_THREADS", "app.secrets.AWS_SECRET_ACCESS_KEY"}
    # The metrics' settings come from the pod spec (the downward API, the component, the worker's bind).
    metrics = _problems({"app": {**APP, "env": {"POD_NAME": "x", "METRICS_BIND": "0.0.0.0:1", "APP_COMPONENT": "y"}}})
    assert set(metrics) == {"app.env.POD_NAME", "app.env.METRICS_BIND", "app.env.APP_COMPONENT"}


def test_a_secret_must_be_encrypted_in_the_stack_file() -> None:
    encrypted = parse_stack_config({"app": {**APP, "secrets": {"TOKEN": {"secure": "v1:abc"}}}})
    assert encrypted.app is not None and encrypted.app.encrypted_secrets == ["TOKEN"]
    # Plain in the file: refused, naming the key and the command that encrypts it.
    problems = _problems({"app": {**APP, "secrets": {"TOKEN": "s3cr3t"}}})
    assert "pulumi config set --secret --path app.secrets.TOKEN" in problems["app.secrets.TOKEN"]
    assert "s3cr3t" not in str(problems)
    # Decrypted by the engine (the key handed over as a secret): accepted, and masked.
    config = parse_stack_config({"app": {**APP, "secrets": {"TOKEN": "s3cr3t"}}}, secrets_decrypted=True)
    assert config.app is not None and "s3cr3t" not in repr(config) + config.model_dump_json()
    assert _problems({"app": {**APP, "env": {"TOKEN": "a"}, "secrets": {"TOKEN": {"secure": "v1:x"}}}}) == {
        "app.secrets": "TOKEN is also in app.env; give each variable once"
    }


def test_an_app_is_not_held_to_the_demos_memory_model() -> None:
    small = {"worker": {"memoryMib": 128, "cpuMillicores": 100}}
    assert "worker.memoryMib" in _problems(small)
    parse_stack_config({**small, "app": APP})
