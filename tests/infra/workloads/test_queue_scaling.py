"""The worker's queue-length scaling: the ScaledObject, its TriggerAuthentication and Secret.

Valid against KEDA's bundled CRDs, fed by config, watching the queue the containers are told
to use on the broker their REDIS_URL names, and never holding the AUTH token in plain text.
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from stack.addons import keda
from stack.config.model import StackConfig
from stack.config.names import WEB, WORKER
from stack.config.rules import parse_stack_config
from stack.config.workers import jobs_deployment, worker_deployments
from stack.tools.offline import is_secret
from stack.workloads import queue_scaling as qs
from stack.config.names import DEFAULT_QUEUE as CELERY_QUEUE
from stack.workloads.app_config import PLACEHOLDER_SECRETS
from stack.workloads.pods import CONFIG_MAP, SECRET
from stack.workloads.worker import worker_settings
from tests.infra.support.stack_files import STACKS, project_config, stack_run
from tests.infra.support.crds import crd_schemas
from tests.infra.support.manifests import find, literal_env, render, worker_names


def keda_schemas() -> dict[tuple[str, str], Any]:
    return crd_schemas(*keda.CRD_FILES)


def test_keda_objects_validate_against_the_bundled_crds(stack_config: StackConfig) -> None:
    manifests = render(stack_config)
    kinds = set()
    for o in manifests:
        if o["apiVersion"].startswith("keda.sh/"):
            jsonschema.validate(o, keda_schemas()[(o["apiVersion"], o["kind"])])
            kinds.add(o["kind"])
    assert kinds == {"ScaledObject", "TriggerAuthentication"}


def test_strict_keda_schema_rejects_a_misspelt_field(prod_config: StackConfig) -> None:
    scaled = qs.scaled_object(prod_config, qs.broker_location(PLACEHOLDER_SECRETS["REDIS_URL"]))
    scaled["spec"]["minReplicas"] = scaled["spec"].pop("minReplicaCount")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(scaled, keda_schemas()[("keda.sh/v1alpha1", "ScaledObject")])


def test_scaled_object_follows_config(stack_config: StackConfig) -> None:
    manifests = render(stack_config)
    for d in worker_deployments(stack_config):
        spec = find(manifests, "ScaledObject", d.name)["spec"]
        scaling = d.spec.autoscaling
        assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": d.name}
        assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (scaling.min_replicas, scaling.max_replicas)
        # One Redis list trigger per queue of the Deployment, each on its own list.
        assert [t["metadata"]["listName"] for t in spec["triggers"]] == list(d.queues)
        for trigger in spec["triggers"]:
            assert trigger["type"] == "redis"
            assert trigger["metadata"]["listLength"] == str(scaling.queue_length_per_replica)
            assert trigger["metadata"]["activationListLength"] == str(scaling.activation_queue_length)
        assert spec["fallback"]["replicas"] == d.spec.replicas
        window = spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"]
        # Busy workers are invisible to the list length: they get at least one task time limit.
        assert window >= d.spec.task_time_limit_seconds
        assert spec["advanced"]["horizontalPodAutoscalerConfig"]["name"] == d.name


def test_keda_takes_over_the_worker_hpa_of_a_stack_deployed_before_it(prod_config: StackConfig) -> None:
    # Until the update ends, an existing stack still has the CPU HPA "worker"; KEDA's webhook
    # would refuse a ScaledObject for a Deployment another HPA scales, unless it adopts it.
    scaled = find(render(prod_config), "ScaledObject", WORKER)
    assert scaled["metadata"]["annotations"] == {"scaledobject.keda.sh/transfer-hpa-ownership": "true"}
    assert scaled["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["name"] == WORKER


def test_scale_to_zero_and_a_larger_target_reach_the_scaled_object() -> None:
    raw = project_config("dev")
    raw["worker"] = {
        **raw.get("worker", {}),
        "concurrency": 2,
        "memoryMib": 896,  # two children on dev's 30 M pixel images (stack.config.memory)
        "autoscaling": {"minReplicas": 0, "maxReplicas": 4, "queueLengthPerReplica": 4, "activationQueueLength": 3},
    }
    config = parse_stack_config(raw)
    spec = find(render(config), "ScaledObject", WORKER)["spec"]
    assert spec["minReplicaCount"] == 0
    assert spec["triggers"][0]["metadata"]["listLength"] == "4"
    assert spec["triggers"][0]["metadata"]["activationListLength"] == "3"
    assert worker_settings(config.worker)["WORKER_CONCURRENCY"] == "2"


def test_the_watched_list_is_the_queue_the_containers_use(stack_config: StackConfig) -> None:
    manifests = render(stack_config)
    config_map = find(manifests, "ConfigMap", CONFIG_MAP)
    # The web sends jobs to CELERY_QUEUE; the worker Deployment consuming it watches that list.
    jobs = jobs_deployment(stack_config)
    lists = [t["metadata"]["listName"] for t in find(manifests, "ScaledObject", jobs.name)["spec"]["triggers"]]
    assert config_map["data"]["CELERY_QUEUE"] == CELERY_QUEUE
    assert CELERY_QUEUE in lists
    for name in (WEB, *worker_names(stack_config)):
        container = find(manifests, "Deployment", name)["spec"]["template"]["spec"]["containers"][0]
        assert {"configMapRef": {"name": config_map["metadata"]["name"]}} in container["envFrom"]
    for d in worker_deployments(stack_config):
        container = find(manifests, "Deployment", d.name)["spec"]["template"]["spec"]["containers"][0]
        env = literal_env(container)
        watched = [t["metadata"]["listName"] for t in find(manifests, "ScaledObject", d.name)["spec"]["triggers"]]
        if d.from_map:
            # The pods consume exactly the lists their ScaledObject watches.
            assert env["WORKER_QUEUES"].split(",") == watched
        else:
            assert "WORKER_QUEUES" not in env and watched == [CELERY_QUEUE]


def test_an_apps_worker_consumes_and_is_scaled_on_celerys_default_queue(app_stack_config: StackConfig) -> None:
    # An app's tasks go to Celery's default queue unless routed; its worker consumes the lists
    # its ScaledObject watches, and the runtime's launcher passes them to `celery worker -Q`.
    manifests = render(app_stack_config)
    for d in worker_deployments(app_stack_config):
        container = find(manifests, "Deployment", d.name)["spec"]["template"]["spec"]["containers"][0]
        env = literal_env(container)
        watched = [t["metadata"]["listName"] for t in find(manifests, "ScaledObject", d.name)["spec"]["triggers"]]
        assert env["WORKER_QUEUES"].split(",") == watched
        assert env["APP_CELERY"] == app_stack_config.app.celery
    if not app_stack_config.workers:
        assert watched == ["celery"]


def test_the_watched_broker_is_the_one_in_redis_url(stack_config: StackConfig) -> None:
    manifests = render(stack_config)
    url = find(manifests, "Secret", SECRET)["stringData"]["REDIS_URL"]
    assert url.startswith("rediss://")
    for name in worker_names(stack_config):
        for trigger in find(manifests, "ScaledObject", name)["spec"]["triggers"]:
            where = trigger["metadata"]
            assert (where["address"], where["databaseIndex"], where["enableTLS"]) == ("redis:6379", "0", "true")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("rediss://:tok@master.x.cache.amazonaws.com:6379/0?ssl_cert_reqs=required", ("master.x.cache.amazonaws.com:6379", 0, True)),
        ("redis://127.0.0.1:6380/10", ("127.0.0.1:6380", 10, False)),
        ("redis://localhost", ("localhost:6379", 0, False)),
    ],
)
def test_broker_location(url: str, expected: tuple[str, int, bool]) -> None:
    where = qs.broker_location(url)
    assert (where.address, where.database, where.tls) == expected
    assert "tok" not in repr(where)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://redis:6379/0", "scheme must be redis or rediss, got 'http'"),
        ("redis:///0", "has no host"),
        ("redis://redis:6379/queue", "database must be a number, got 'queue'"),
    ],
)
def test_broker_location_rejects_bad_urls(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        qs.broker_location(url)


def test_trigger_authentication_reads_the_token_from_the_secret(stack_config: StackConfig) -> None:
    manifests = render(stack_config)
    auth = find(manifests, "TriggerAuthentication")
    for name in worker_names(stack_config):
        for trigger in find(manifests, "ScaledObject", name)["spec"]["triggers"]:
            assert trigger["authenticationRef"] == {"name": auth["metadata"]["name"]}
    (ref,) = auth["spec"]["secretTargetRef"]
    secret = find(manifests, "Secret", ref["name"])
    assert ref["parameter"] == "password"
    assert set(secret["stringData"]) == {ref["key"]}
    for o in (auth, *(find(manifests, "ScaledObject", name) for name in worker_names(stack_config))):
        assert qs.PLACEHOLDER_TOKEN not in json.dumps(o)


@pytest.mark.parametrize("stack", STACKS)
def test_no_token_in_plain_state(stack: str) -> None:
    run = stack_run(stack)
    auth_token = run.named("aws:elasticache/replicationGroup:ReplicationGroup", "redis").inputs["authToken"]
    assert is_secret(auth_token)
    token = auth_token["value"]
    assert len(token) >= 16
    secret = run.named("kubernetes:core/v1:Secret", "app-queue-auth")
    assert is_secret(secret.inputs["stringData"])
    assert secret.inputs["stringData"]["value"] == {qs.AUTH_SECRET_KEY: token}
    # The ScaledObject is plain (previews show it) and points at the replication group.
    for name in worker_names(parse_stack_config(project_config(stack))):
        scaled = run.named("kubernetes:keda.sh/v1alpha1:ScaledObject", f"app-{name}")
        for trigger in scaled.inputs["spec"]["triggers"]:
            assert trigger["metadata"]["address"] == f"{run.outputs['redisEndpoint']}:6379"
            assert trigger["metadata"]["enableTLS"] == "true"
    # Outside secret-marked values the token appears nowhere in what is stored.
    for r in run.resources:
        assert token not in json.dumps(r.redacted_inputs), (r.type, r.name)


def keda_admission_warnings(scaled: dict[str, Any]) -> list[str]:
    """What KEDA's webhook warns about pollingInterval and cooldownPeriod, as KEDA 2.20.2 decides it.

    kedacore/keda apis/keda/v1alpha1/scaledobject_webhook.go @v2.20.2 (the chart version in
    infra/stack/data/keda), `verifyScaledObjects` lines 336-358: a field that is set warns when
    minReplicaCount (default 0) > 0 and idleReplicaCount is unset or not 0; pollingInterval
    only if no trigger uses cached metrics either.
    """
    spec = scaled["spec"]
    idle = spec.get("idleReplicaCount")
    idle_not_zero = idle is None or idle != 0
    cached = any(t.get("useCachedMetrics") for t in spec["triggers"])
    above_zero = spec.get("minReplicaCount", 0) > 0
    warnings = []
    if "pollingInterval" in spec and above_zero and idle_not_zero and not cached:
        warnings.append("PollingInterval is configured but is not relevant")
    if "cooldownPeriod" in spec and above_zero and idle_not_zero:
        warnings.append("CooldownPeriod is configured but is not relevant")
    return warnings


def worker_scaled_object(min_replicas: int) -> dict[str, Any]:
    raw = project_config("dev")
    raw["worker"] = {**raw.get("worker", {}), "replicas": max(min_replicas, 1), "autoscaling": {"minReplicas": min_replicas, "maxReplicas": 4}}
    return find(render(parse_stack_config(raw)), "ScaledObject", WORKER)


@pytest.mark.parametrize("stack", STACKS)
def test_scaled_objects_of_every_stack_draw_no_keda_admission_warning(stack: str) -> None:
    run = stack_run(stack)
    scaled_objects = list(run.of_type("kubernetes:keda.sh/v1alpha1:ScaledObject"))
    assert len(scaled_objects) == len(worker_names(parse_stack_config(project_config(stack))))
    for scaled in scaled_objects:
        assert keda_admission_warnings(scaled.inputs) == []


@pytest.mark.parametrize("min_replicas", [1, 2])
def test_above_zero_the_scaled_object_sets_no_scale_to_zero_timing(min_replicas: int) -> None:
    spec = worker_scaled_object(min_replicas)["spec"]
    assert "cooldownPeriod" not in spec and "pollingInterval" not in spec
    assert keda_admission_warnings({"spec": spec}) == []


def test_scaled_to_zero_the_worker_gets_its_polling_interval_and_cooldown() -> None:
    spec = worker_scaled_object(0)["spec"]
    assert (spec["pollingInterval"], spec["cooldownPeriod"]) == (qs.POLLING_INTERVAL_SECONDS, qs.COOLDOWN_SECONDS)
    assert keda_admission_warnings({"spec": spec}) == []
