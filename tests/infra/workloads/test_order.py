"""The order `Workloads` registers its children in (stack/workloads/order.py): safe to create
and to destroy, every Kubernetes object after the platform, the dependency graph closed and
acyclic."""

from __future__ import annotations

import pulumi

from stack.config.model import StackConfig
from stack.tools.offline import S3_PREFIX_LIST_CIDRS
from stack.workloads.migration import migration_job_name
from stack.workloads.network_policies import network_policies
from stack.workloads.order import DEPENDENCIES, child_options, dependency_closure
from tests.infra.support.manifests import IMAGE
from tests.infra.support.workload_mocks import RecordingMonitor, run, workloads


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
    assert job.inputs["metadata"]["name"] == migration_job_name(IMAGE)
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
    workloads(config, depends_on=[pulumi.CustomResource("test:index:NodeGroup", "nodes", {})])


def test_binding_comes_after_the_controller() -> None:
    assert "controller" in DEPENDENCIES["target-group-binding"]


def test_pods_are_created_only_once_the_controller_webhook_runs() -> None:
    for role in ("migration", "web", "worker"):
        assert "controller" in dependency_closure(role)


def test_deployments_come_after_the_migration() -> None:
    assert "migration" in DEPENDENCIES["web"]
    assert "migration" in DEPENDENCIES["worker"]


def test_dependency_graph_is_acyclic_and_closed() -> None:
    roles = set(DEPENDENCIES)
    for role, before in DEPENDENCIES.items():
        assert set(before) <= roles, role
        assert role not in dependency_closure(role)


def test_child_options_carry_parent_provider_and_dependencies() -> None:
    parent = object.__new__(pulumi.ComponentResource)
    dep = object.__new__(pulumi.CustomResource)
    opts = child_options(parent, provider=None, depends_on=[dep])
    assert opts.parent is parent
    assert opts.depends_on == [dep]
