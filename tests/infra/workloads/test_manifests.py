"""The assembled objects of the app namespace (stack/workloads/manifests.py), for every stack file:
all in the namespace, the replica counts left to the autoscalers, every core object valid for
the cluster's Kubernetes version."""

from __future__ import annotations

import json

import jsonschema
import kubernetes_validate
import pytest

from stack.addons import keda
from stack.addons import load_balancer_controller as lbc
from stack.config.model import StackConfig
from stack.config.names import BEAT, NAMESPACE, WEB, WORKER
from stack.config.workers import worker_deployments
from stack.config.rules import parse_stack_config, platform_env_name
from tests.infra.support.crds import crd_schemas
from tests.infra.support.manifests import cluster_version, find, literal_env, pod_specs, render, worker_names
from tests.infra.support.stack_files import STACKS, project_config


def test_everything_lives_in_the_app_namespace(stack_config: StackConfig) -> None:
    for o in render(stack_config):
        if o["kind"] != "Namespace":
            assert o["metadata"]["namespace"] == NAMESPACE, o["kind"]


def test_deployments_leave_replicas_to_the_autoscaler(stack_config: StackConfig) -> None:
    # With Server-Side Apply, a replicas field in Pulumi's manifest would be re-applied on every
    # `pulumi up`, undoing the HPA's choice.
    manifests = render(stack_config)
    for name in (WEB, *worker_names(stack_config)):
        deployment = find(manifests, "Deployment", name)
        assert "replicas" not in deployment["spec"]
        assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


@pytest.mark.parametrize("stack", STACKS)
def test_every_object_validates_against_the_cluster_schema(stack: str) -> None:
    stack_config = parse_stack_config(project_config(stack))
    custom = crd_schemas(lbc.CRDS_FILE, *keda.CRD_FILES)
    for o in render(stack_config):
        if o["apiVersion"].startswith(("elbv2.k8s.aws/", "keda.sh/")):
            # Custom resources: against the CRDs the stack installs (the controller's, KEDA's).
            jsonschema.validate(o, custom[(o["apiVersion"], o["kind"])])
            continue
        try:
            kubernetes_validate.validate(o, cluster_version(stack_config), strict=True)
        except kubernetes_validate.ValidationError as e:
            pytest.fail(f"{o['kind']} {o['metadata']['name']}: {e.message} at {list(e.caught.path)}")


# --- a stack with an app of its own (`app` section): the example project's ---------------------

DEMO_OBJECTS = {("CronJob", "reconciler"), ("ServiceAccount", "reconciler"), ("Job", "benchmark"),
                ("NetworkPolicy", "reconciler-egress"), ("NetworkPolicy", "benchmark-egress")}
"""The demo's own objects (its reconciler, its benchmark and their access)."""
DEMO_ENV_PREFIXES = ("JOBS_", "API_IO", "RECONCILER_", "BENCH_")
"""The demo's own variables: its pixel limit and upload slots, /api/io, its reconciler's knobs."""


def _env_names(manifests: list[dict[str, object]]) -> set[str]:
    names: set[str] = set()
    for o in manifests:
        if (o["kind"], o["metadata"]["name"]) in (("ConfigMap", "app-config"), ("Secret", "app-secrets")):
            names |= set(o.get("data") or {}) | set(o.get("stringData") or {})  # type: ignore[arg-type]
    for _, spec in pod_specs(manifests):
        for container in [*spec["containers"], *spec.get("initContainers", [])]:
            names |= {item["name"] for item in container.get("env", [])}
    return names


def test_an_app_stack_renders_nothing_of_the_demo(app_stack_config: StackConfig) -> None:
    manifests = render(app_stack_config)
    objects = {(o["kind"], o["metadata"]["name"]) for o in manifests}
    assert not objects & DEMO_OBJECTS
    names = _env_names(manifests)
    assert not [n for n in names if n.startswith(DEMO_ENV_PREFIXES)], sorted(names)
    # Nothing of the demo's image either: its launcher, its heartbeat, its settings module.
    text = json.dumps(manifests)
    for demo in ("config.launch", "config.heartbeat", "config.settings", "wait-for-credentials", "/api/io"):
        assert demo not in text, demo
    # While the demo's stacks do have them (so the checks above can fail).
    demo = render(parse_stack_config(project_config("dev")))
    assert {("CronJob", "reconciler"), ("ServiceAccount", "reconciler")} <= {(o["kind"], o["metadata"]["name"]) for o in demo}
    assert "JOBS_MAX_PIXELS" in _env_names(demo) and "config.launch" in json.dumps(demo)


def test_an_app_stack_runs_the_runtime_package_with_the_contract_env(app_stack_config: StackConfig) -> None:
    app = app_stack_config.app
    assert app is not None
    manifests = render(app_stack_config)
    settings = find(manifests, "ConfigMap", "app-config")["data"]
    assert settings["DJANGO_SETTINGS_MODULE"] == app.settings_module
    assert {k: settings[k] for k in app.env} == app.env
    assert {"DATABASE_URL", "REDIS_URL", "DJANGO_SECRET_KEY"} <= set(find(manifests, "Secret", "app-secrets")["stringData"])
    commands = {}
    for name, spec in pod_specs(manifests):
        container = spec["containers"][0]
        commands[name] = container["command"]
        assert container["envFrom"][0]["configMapRef"]["name"] == "app-config"
    runtime = ["python", "-m", "django_eks_runtime"]
    assert commands == {
        WEB: [*runtime, "web"],
        **{name: [*runtime, "worker"] for name in worker_names(app_stack_config)},
        **({BEAT: [*runtime, "beat"]} if app_stack_config.beat is not None else {}),
        next(n for n in commands if n.startswith("migrate")): [*runtime, "migrate"],
    }
    web_env = literal_env(find(manifests, "Deployment", WEB)["spec"]["template"]["spec"]["containers"][0])
    assert web_env["APP_WSGI"] == app.wsgi and web_env["APP_HEALTH_PATH"] == app.health_path
    assert web_env["PROBE_BIND"].endswith(":8001") and {"WEB_SERVER", "WEB_THREADS"} <= set(web_env)
    for d in worker_deployments(app_stack_config):
        deployment = find(manifests, "Deployment", d.name)
        worker_env = literal_env(deployment["spec"]["template"]["spec"]["containers"][0])
        assert worker_env["APP_CELERY"] == app.celery
        # KEDA watches the queues the worker consumes: the Celery default queue for a single
        # `worker`, each entry's own for `workers`.
        watched = [t["metadata"]["listName"] for t in find(manifests, "ScaledObject", d.name)["spec"]["triggers"]]
        assert worker_env["WORKER_QUEUES"].split(",") == watched == list(d.queues)
        assert d.from_map or watched == ["celery"]

def test_the_platform_names_its_own_variables(app_stack_config: StackConfig) -> None:
    # app.env and app.secrets may not set what the platform sets (stack.config.rules): every
    # variable the platform renders must be one the rules reserve, or an app could override it.
    app = app_stack_config.app
    assert app is not None
    platform = _env_names(render(app_stack_config)) - set(app.env) - set(app.secrets)
    assert [n for n in platform if not platform_env_name(n)] == []


def test_without_the_files_bucket_an_app_pod_reaches_no_aws_api(app_stack_config: StackConfig) -> None:
    assert app_stack_config.app is not None and not app_stack_config.app.uses_files_bucket
    policies = [o for o in render(app_stack_config) if o["kind"] == "NetworkPolicy"]
    assert "169.254.170.23/32" not in json.dumps(policies)
    with_bucket = app_stack_config.model_copy(
        update={"app": app_stack_config.app.model_copy(update={"uses_files_bucket": True})}
    )
    assert "169.254.170.23/32" in json.dumps([o for o in render(with_bucket) if o["kind"] == "NetworkPolicy"])
