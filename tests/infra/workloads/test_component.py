"""`Workloads` under Pulumi's mock engine (stack/workloads/component.py): what it registers,
under which parent and provider, and that the registered objects are the rendered manifests."""

from __future__ import annotations

from collections import Counter
from typing import Any

from stack.config.model import StackConfig
from stack.config.names import NAMESPACE, WORKER
from stack.config.workers import worker_deployments
from stack.workloads import app_config
from stack.workloads import queue_scaling as qs
from stack.workloads.beat import beat_statefulset
from stack.workloads.component import TYPE
from stack.workloads.cron_jobs import cron_job
from stack.workloads.migration import migration_job
from stack.workloads.pods import pod_disruption_budget
from stack.workloads.web import target_group_binding, web_deployment, web_hpa, web_service
from stack.workloads.worker import worker_deployment, worker_selector
from tests.infra.support.manifests import IMAGE, PROXY_IMAGE
from tests.infra.support.workload_mocks import REDIS_URL, RecordingMonitor, run, workloads


EXPECTED_TYPES = {
    "kubernetes:core/v1:Namespace": 1,
    "kubernetes:core/v1:ServiceAccount": 4,
    "kubernetes:batch/v1:CronJob": 1,
    "kubernetes:apps/v1:StatefulSet": 0,
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
    assert outputs == {"namespace": NAMESPACE, "app_url": "http://alb-123.us-east-1.elb.amazonaws.com"}
    counts = Counter(r.type for r in monitor.registered)
    # Per extra worker Deployment: a Deployment, a ScaledObject, a PDB; beat: a StatefulSet and
    # its account; each cron job: a CronJob.
    extra = len(stack_config.workers) - 1 if stack_config.workers else 0
    expected = EXPECTED_TYPES | {
        "kubernetes:apps/v1:Deployment": 2 + extra,
        "kubernetes:keda.sh/v1alpha1:ScaledObject": 1 + extra,
        "kubernetes:policy/v1:PodDisruptionBudget": 2 + extra,
        "kubernetes:core/v1:ServiceAccount": 4 + (stack_config.beat is not None),
        "kubernetes:apps/v1:StatefulSet": int(stack_config.beat is not None),
        "kubernetes:batch/v1:CronJob": 1 + len(stack_config.cron_jobs),
    }
    assert {t: counts[t] for t in expected} == expected
    (root,) = [r for r in monitor.registered if r.type == TYPE]
    children = [r for r in monitor.registered if r.type in EXPECTED_TYPES]
    assert all(r.parent == root.urn for r in children)
    # Every Kubernetes object goes to the EKS cluster's provider, never an ambient kubeconfig.
    for r in children:
        if r.type.startswith("kubernetes:"):
            assert "pulumi:providers:kubernetes::cluster" in r.provider, r.type


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


def test_registered_objects_are_exactly_the_rendered_manifests(
    monitor: RecordingMonitor, stack_config: StackConfig
) -> None:
    # The component passes the plain dicts to the typed resources; nothing may be renamed,
    # dropped or added on the way (camelCase keys, label keys with dots and slashes).
    run(lambda: workloads(stack_config) and None)
    names = {"config_map_name": "app-config-generated", "secret_name": "app-secrets-generated"}
    expected = {
        ("kubernetes:apps/v1:Deployment", "app-web"): web_deployment(stack_config, IMAGE, proxy_image=PROXY_IMAGE, **names),
        **{
            ("kubernetes:apps/v1:Deployment", f"app-{d.name}"): worker_deployment(stack_config, IMAGE, name=d.name, **names)
            for d in worker_deployments(stack_config)
        },
        **{
            ("kubernetes:keda.sh/v1alpha1:ScaledObject", f"app-{d.name}"): qs.scaled_object(
                stack_config, qs.broker_location(REDIS_URL), d.name
            )
            for d in worker_deployments(stack_config)
        },
        **{
            ("kubernetes:policy/v1:PodDisruptionBudget", f"app-{d.name}"): pod_disruption_budget(
                WORKER, name=d.name, match_labels=worker_selector(d)
            )
            for d in worker_deployments(stack_config)
        },
        **(
            {("kubernetes:apps/v1:StatefulSet", "app-beat"): beat_statefulset(stack_config, IMAGE, **names)}
            if stack_config.beat
            else {}
        ),
        **{
            ("kubernetes:batch/v1:CronJob", f"app-cron-{key}"): cron_job(stack_config, IMAGE, key=key, **names)
            for key in stack_config.cron_jobs
        },
        ("kubernetes:batch/v1:Job", "app-migrate"): migration_job(stack_config, IMAGE, **names),
        ("kubernetes:core/v1:Service", "app-web"): web_service(),
        ("kubernetes:autoscaling/v2:HorizontalPodAutoscaler", "app-web"): web_hpa(stack_config),
        ("kubernetes:keda.sh/v1alpha1:TriggerAuthentication", "app-queue-trigger-auth"): qs.trigger_authentication(),
        ("kubernetes:core/v1:Namespace", "app-namespace"): app_config.namespace(stack_config),
        ("kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding", "app-web-target-group-binding"): (
            target_group_binding("arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/0123")
        ),
    }
    registered = {(r.type, r.name): r.inputs for r in monitor.registered}
    for key, manifest in expected.items():
        inputs = registered[key]
        for field in ("metadata", "spec"):
            if field in manifest:
                assert inputs[field] == manifest[field], (key, field)
