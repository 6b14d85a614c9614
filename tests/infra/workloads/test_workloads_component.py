"""`Workloads` under Pulumi's mock engine: what it registers, in which order, and that the
Secret's values stay secret."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pytest
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc

from stack.config.model import StackConfig
from stack.workloads import Workloads, WorkloadsArgs
from stack.workloads import component as c
from stack.workloads import manifests as m
from stack.workloads import proxy
from stack.workloads import queue_scaling as qs
from stack.tools.offline import S3_PREFIX_LIST_CIDRS
from stack.workloads.network_policies import network_policies

SECRET_SIG = rpc._special_sig_key
SECRET_MARK = rpc._special_secret_sig

DATABASE_URL = "postgres://app:database-password-value@db.internal:5432/app?sslmode=require"
REDIS_TOKEN = "redis-token-value"
REDIS_URL = f"rediss://:{REDIS_TOKEN}@redis.internal:6379/0?ssl_cert_reqs=required"
GENERATED_KEY = "generatedsecretkeyvalue"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/django-eks:0.1.0"
PROXY_IMAGE = proxy.proxy_image("123456789012.dkr.ecr.us-east-1.amazonaws.com", "dev-ecr-public")


@dataclass
class Registration:
    type: str
    name: str
    urn: str
    inputs: dict[str, Any]
    dependencies: list[str]
    parent: str
    provider: str


class Mocks(pulumi.runtime.Mocks):
    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        state = dict(args.inputs)
        if args.typ.startswith("kubernetes:") and "metadata" in state:
            # The provider generates names for objects registered without one.
            state["metadata"] = {"name": f"{args.name}-generated", **state["metadata"]}
        if args.typ == "random:index/randomPassword:RandomPassword":
            state["result"] = GENERATED_KEY
        state.setdefault("arn", f"arn:aws:mock::123456789012:{args.name}")
        state.setdefault("name", args.name)
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        return {}


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """Keeps the dependencies and raw (secret-marked) inputs that plain mocks drop."""

    def __init__(self, mocks: Mocks) -> None:
        super().__init__(mocks)
        self.registered: list[Registration] = []

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        self.registered.append(
            Registration(
                type=request.type,
                name=request.name,
                urn=response.urn,
                inputs=rpc.deserialize_properties(request.object, keep_unknowns=True),
                dependencies=list(request.dependencies),
                parent=request.parent,
                provider=request.provider,
            )
        )
        return response

    def one(self, type_: str) -> Registration:
        matches = [r for r in self.registered if r.type == type_]
        assert len(matches) == 1, f"{type_}: {len(matches)} registered"
        return matches[0]


@pytest.fixture
def monitor(clean_pulumi_runtime: None) -> RecordingMonitor:
    mocks = Mocks()
    recording = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project="django-eks", stack="test", preview=False, monitor=recording)
    return recording


def run(program: Callable[[], Any]) -> dict[str, Any]:
    """Runs `program` under the mocks until every registration and output has settled; the
    values of the Outputs it returns (a dict of them) come back resolved."""
    resolved: dict[str, Any] = {}

    @pulumi.runtime.test
    def settle() -> Any:
        outputs = program() or {}
        return pulumi.Output.all(**outputs).apply(resolved.update)

    settle()
    return resolved


def workloads(config: StackConfig, **opts: Any) -> Workloads:
    provider = k8s.Provider("cluster", kubeconfig="{}")
    return Workloads(
        "app",
        WorkloadsArgs(
            config=config,
            provider=provider,
            cluster_name="django-eks-test",
            vpc_id="vpc-0123456789abcdef0",
            target_group_arn="arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/0123",
            alb_dns_name="alb-123.us-east-1.elb.amazonaws.com",
            app_url="http://alb-123.us-east-1.elb.amazonaws.com",
            redis_url=pulumi.Output.secret(REDIS_URL),
            redis_auth_token=pulumi.Output.secret(REDIS_TOKEN),
            database_url=pulumi.Output.secret(DATABASE_URL),
            image=pulumi.Output.from_input(IMAGE),
            proxy_image=PROXY_IMAGE,
            s3_cidrs=list(S3_PREFIX_LIST_CIDRS),
        ),
        pulumi.ResourceOptions(**opts),
    )


EXPECTED_TYPES = {
    "kubernetes:core/v1:Namespace": 1,
    "kubernetes:core/v1:ServiceAccount": 4,
    "kubernetes:batch/v1:CronJob": 1,
    "kubernetes:core/v1:Secret": 2,
    "kubernetes:core/v1:ConfigMap": 2,  # the app's settings and the web pod's proxy config
    "kubernetes:batch/v1:Job": 1,
    "kubernetes:apps/v1:Deployment": 2,
    "kubernetes:core/v1:Service": 1,
    "kubernetes:autoscaling/v2:HorizontalPodAutoscaler": 1,
    "kubernetes:keda.sh/v1alpha1:ScaledObject": 1,
    "kubernetes:keda.sh/v1alpha1:TriggerAuthentication": 1,
    "kubernetes:policy/v1:PodDisruptionBudget": 2,
    # The load balancer controller is installed by the add-ons (stack.addons.component).
    "kubernetes:helm.sh/v3:Release": 0,
    "kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding": 1,
    "aws:iam/role:Role": 0,
    "aws:iam/policy:Policy": 0,
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": 0,
    "aws:eks/podIdentityAssociation:PodIdentityAssociation": 0,
    "random:index/randomPassword:RandomPassword": 1,
}


def test_registers_every_resource_once_under_the_component(
    monitor: RecordingMonitor, stack_config: StackConfig
) -> None:
    def program() -> dict[str, Any]:
        component = workloads(stack_config)
        return {"namespace": component.namespace, "app_url": component.app_url}

    outputs = run(program)
    assert outputs == {"namespace": m.NAMESPACE, "app_url": "http://alb-123.us-east-1.elb.amazonaws.com"}
    counts = Counter(r.type for r in monitor.registered)
    assert {t: counts[t] for t in EXPECTED_TYPES} == EXPECTED_TYPES
    (root,) = [r for r in monitor.registered if r.type == c.TYPE]
    children = [r for r in monitor.registered if r.type in EXPECTED_TYPES]
    assert all(r.parent == root.urn for r in children)
    # Every Kubernetes object goes to the EKS cluster's provider, never an ambient kubeconfig.
    for r in children:
        if r.type.startswith("kubernetes:"):
            assert "pulumi:providers:kubernetes::cluster" in r.provider, r.type


def _depends(monitor: RecordingMonitor, type_: str, on: str) -> bool:
    return monitor.one(on).urn in monitor.one(type_).dependencies


def test_destroy_order_is_safe(monitor: RecordingMonitor, prod_config: StackConfig) -> None:
    run(lambda: workloads(prod_config) and None)
    binding = "kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding"
    # Destroy runs dependents first (the binding before the load balancer controller, which
    # removes its finalizer: tests/infra/addons/test_component.py).
    assert _depends(monitor, binding, "kubernetes:core/v1:Service")
    job = monitor.one("kubernetes:batch/v1:Job")
    for deployment in [r for r in monitor.registered if r.type == "kubernetes:apps/v1:Deployment"]:
        # A failed migration stops the rollout.
        assert job.urn in deployment.dependencies
    assert job.inputs["metadata"]["name"] == m.migration_job_name(IMAGE)
    web = next(r for r in monitor.registered if r.type == "kubernetes:apps/v1:Deployment" and r.name == "app-web")
    assert monitor.one(binding).urn in web.dependencies
    # The ScaledObject goes before its Deployment and the authentication it reads.
    scaled = "kubernetes:keda.sh/v1alpha1:ScaledObject"
    worker = next(r for r in monitor.registered if r.type == "kubernetes:apps/v1:Deployment" and r.name == "app-worker")
    assert worker.urn in monitor.one(scaled).dependencies
    assert _depends(monitor, scaled, "kubernetes:keda.sh/v1alpha1:TriggerAuthentication")
    auth_secret = next(r for r in monitor.registered if r.type == "kubernetes:core/v1:Secret" and r.name == "app-queue-auth")
    assert auth_secret.urn in monitor.one("kubernetes:keda.sh/v1alpha1:TriggerAuthentication").dependencies


def test_every_kubernetes_object_waits_for_the_platform(monitor: RecordingMonitor, prod_config: StackConfig) -> None:
    run(lambda: _with_platform_dependency(prod_config))
    nodes = next(r for r in monitor.registered if r.type == "test:index:NodeGroup")
    objects = [r for r in monitor.registered if r.type.startswith("kubernetes:") and "providers" not in r.type]
    # The reconciler CronJob and its service account, and the proxy's ConfigMap, included.
    assert len(objects) == 20 + len(network_policies(prod_config, s3_cidrs=S3_PREFIX_LIST_CIDRS))
    for r in objects:
        assert nodes.urn in r.dependencies, r.type


def _with_platform_dependency(config: StackConfig) -> None:
    platform = pulumi.CustomResource("test:index:NodeGroup", "nodes", {})
    provider = k8s.Provider("cluster", kubeconfig="{}")
    Workloads(
        "app",
        WorkloadsArgs(
            config=config,
            provider=provider,
            cluster_name="c",
            vpc_id="vpc-1",
            target_group_arn="arn:tg",
            alb_dns_name="alb",
            app_url="http://alb",
            redis_url=pulumi.Output.secret(REDIS_URL),
            redis_auth_token=pulumi.Output.secret(REDIS_TOKEN),
            database_url=pulumi.Output.secret(DATABASE_URL),
            image=IMAGE,
            proxy_image=PROXY_IMAGE,
            s3_cidrs=list(S3_PREFIX_LIST_CIDRS),
            depends_on=[platform],
        ),
    )


def test_secret_values_stay_secret(monitor: RecordingMonitor, prod_config: StackConfig) -> None:
    captured: dict[str, pulumi.Resource] = {}

    def capture(args: pulumi.ResourceTransformationArgs) -> None:
        captured[args.name] = args.resource
        return None

    def program() -> dict[str, Any]:
        workloads(prod_config, transformations=[capture])
        secret = captured["app-secrets"]
        queue_auth = captured["app-queue-auth"]
        assert isinstance(secret, k8s.core.v1.Secret) and isinstance(queue_auth, k8s.core.v1.Secret)
        return {
            "is_secret": pulumi.Output.from_input(secret.string_data.is_secret()),
            "string_data": secret.string_data,
            "queue_auth_is_secret": pulumi.Output.from_input(queue_auth.string_data.is_secret()),
            "queue_auth": queue_auth.string_data,
        }

    outputs = run(program)
    # The Secret's output property is a secret Output holding the three values.
    assert outputs["is_secret"] is True
    assert outputs["string_data"] == {
        "DJANGO_SECRET_KEY": GENERATED_KEY,
        "DATABASE_URL": DATABASE_URL,
        "REDIS_URL": REDIS_URL,
    }
    # KEDA's Secret holds the token alone, as a secret too.
    assert outputs["queue_auth_is_secret"] is True
    assert outputs["queue_auth"] == {qs.AUTH_SECRET_KEY: REDIS_TOKEN}
    # What the program passed: the whole stringData is marked secret on the wire.
    for r in monitor.registered:
        if r.type == "kubernetes:core/v1:Secret":
            raw = r.inputs["stringData"]
            assert isinstance(raw, dict) and raw.get(SECRET_SIG) == SECRET_MARK, r.name
    # And nothing of it reaches another object's inputs in plain text.
    for r in monitor.registered:
        if r.type in ("kubernetes:core/v1:Secret", "random:index/randomPassword:RandomPassword"):
            continue
        text = repr(r.inputs)
        for value in (DATABASE_URL, REDIS_URL, GENERATED_KEY, "database-password-value", "redis-token-value"):
            assert value not in text, r.type


def test_secret_values_are_secret_even_from_plain_inputs(monitor: RecordingMonitor) -> None:
    def program() -> dict[str, Any]:
        values = c.secret_values(secret_key="k", database_url="d", redis_url="r")
        return {"is_secret": pulumi.Output.from_input(values.is_secret()), "values": values}

    outputs = run(program)
    assert outputs["is_secret"] is True
    assert outputs["values"] == {"DJANGO_SECRET_KEY": "k", "DATABASE_URL": "d", "REDIS_URL": "r"}


def test_deployments_reference_the_generated_config_names(monitor: RecordingMonitor, prod_config: StackConfig) -> None:
    run(lambda: workloads(prod_config) and None)
    deployments = [r for r in monitor.registered if r.type == "kubernetes:apps/v1:Deployment"]
    assert {d.name for d in deployments} == {"app-web", "app-worker"}
    for d in deployments:
        assert "replicas" not in d.inputs["spec"]
        env_from = d.inputs["spec"]["template"]["spec"]["containers"][0]["envFrom"]
        assert env_from == [
            {"configMapRef": {"name": "app-config-generated"}},
            {"secretRef": {"name": "app-secrets-generated"}},
        ]
        assert d.inputs["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE
    config_maps = [r.inputs for r in monitor.registered if r.type == "kubernetes:core/v1:ConfigMap"]
    config_map = next(c for c in config_maps if "DJANGO_ALLOWED_HOSTS" in c["data"])
    assert "name" not in config_map["metadata"]
    assert config_map["data"]["DJANGO_ALLOWED_HOSTS"] == "alb-123.us-east-1.elb.amazonaws.com"


# --- the dependency graph, without the engine -------------------------------------------------


def test_binding_comes_after_the_controller() -> None:
    assert "controller" in c.DEPENDENCIES["target-group-binding"]


def test_pods_are_created_only_once_the_controller_webhook_runs() -> None:
    for role in ("migration", "web", "worker"):
        assert "controller" in c.dependency_closure(role)


def test_deployments_come_after_the_migration() -> None:
    assert "migration" in c.DEPENDENCIES["web"]
    assert "migration" in c.DEPENDENCIES["worker"]


def test_dependency_graph_is_acyclic_and_closed() -> None:
    roles = set(c.DEPENDENCIES) | {"pod-identity"}
    for role, before in c.DEPENDENCIES.items():
        assert set(before) <= roles, role
        assert role not in c.dependency_closure(role)


def test_child_options_carry_parent_provider_and_dependencies() -> None:
    parent = object.__new__(pulumi.ComponentResource)
    dep = object.__new__(pulumi.CustomResource)
    opts = c.child_options(parent, provider=None, depends_on=[dep])
    assert opts.parent is parent
    assert opts.depends_on == [dep]


def test_registered_objects_are_exactly_the_rendered_manifests(
    monitor: RecordingMonitor, stack_config: StackConfig
) -> None:
    # The component passes the plain dicts to the typed resources; nothing may be renamed,
    # dropped or added on the way (camelCase keys, label keys with dots and slashes).
    run(lambda: workloads(stack_config) and None)
    names = {"config_map_name": "app-config-generated", "secret_name": "app-secrets-generated"}
    expected = {
        ("kubernetes:apps/v1:Deployment", "app-web"): m.web_deployment(stack_config, IMAGE, proxy_image=PROXY_IMAGE, **names),
        ("kubernetes:apps/v1:Deployment", "app-worker"): m.worker_deployment(stack_config, IMAGE, **names),
        ("kubernetes:batch/v1:Job", "app-migrate"): m.migration_job(stack_config, IMAGE, **names),
        ("kubernetes:core/v1:Service", "app-web"): m.web_service(),
        ("kubernetes:autoscaling/v2:HorizontalPodAutoscaler", "app-web"): m.web_hpa(stack_config),
        ("kubernetes:keda.sh/v1alpha1:ScaledObject", "app-worker"): qs.scaled_object(
            stack_config, qs.broker_location(REDIS_URL)
        ),
        ("kubernetes:keda.sh/v1alpha1:TriggerAuthentication", "app-queue-trigger-auth"): qs.trigger_authentication(),
        ("kubernetes:policy/v1:PodDisruptionBudget", "app-worker"): m.pod_disruption_budget(m.WORKER),
        ("kubernetes:core/v1:Namespace", "app-namespace"): m.namespace(stack_config),
        ("kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding", "app-web-target-group-binding"): (
            m.target_group_binding("arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/0123")
        ),
    }
    registered = {(r.type, r.name): r.inputs for r in monitor.registered}
    for key, manifest in expected.items():
        inputs = registered[key]
        for field in ("metadata", "spec"):
            if field in manifest:
                assert inputs[field] == manifest[field], (key, field)
