"""What every app pod shares (stack/workloads/pods.py): placement on its own pool, requests and
limits, Pod Security "restricted", the spread over zones, the disruption budgets, and the
environment only through the ConfigMap and Secret."""

from __future__ import annotations

from typing import Any

from config import launch
from stack.config.model import NODE_POOL_LABEL, NodePoolConfig, StackConfig
from stack.config.names import BEAT, MIGRATE, WEB, WORKER
from stack.config.workers import worker_deployments
from stack.model.pod_requests import beat_pool, cron_job_pool, system_pool
from stack.config.rules import parse_stack_config
from stack.platform.node_pools import node_placement
from stack.workloads.cron_jobs import cron_job_name
from stack.workloads.migration import migration_job_name
from stack.workloads.reconciler import RECONCILER
from stack.workloads.worker import worker_selector
from stack.workloads.pods import CONFIG_MAP, METRICS_SETTINGS, SECRET, selector_labels
from tests.infra.support.manifests import IMAGE, find, literal_env, pod_specs, render, worker_names


def tolerates(tolerations: list[dict[str, Any]], taint: Any) -> bool:
    """Kubernetes' toleration matching for one taint."""
    for t in tolerations:
        if t.get("effect") not in (None, "", taint.effect):
            continue
        operator = t.get("operator", "Equal")
        if operator == "Exists" and t.get("key") in (None, "", taint.key):
            return True
        if operator == "Equal" and t.get("key") == taint.key and t.get("value") == taint.value:
            return True
    return False


def can_land(pod_spec: dict[str, Any], pool_name: str, pool: NodePoolConfig) -> bool:
    """Whether the pod may be scheduled on a node of the pool: its nodeSelector matches the
    node's labels and its tolerations cover every NoSchedule/NoExecute taint."""
    node_labels = {**pool.labels, NODE_POOL_LABEL: pool_name}
    selector = pod_spec.get("nodeSelector", {})
    if any(node_labels.get(key) != value for key, value in selector.items()):
        return False
    tolerations = pod_spec.get("tolerations", [])
    return all(
        tolerates(tolerations, taint)
        for taint in pool.taints
        if taint.effect in ("NoSchedule", "NoExecute")
    )


def test_pods_land_only_on_their_own_pool(stack_config: StackConfig) -> None:
    manifests = render(stack_config)
    system = system_pool(stack_config)
    expected = {
        WEB: stack_config.web.node_pool,
        **{d.name: d.spec.node_pool for d in worker_deployments(stack_config)},
        migration_job_name(IMAGE): stack_config.web.node_pool,
        RECONCILER: system,
        BEAT: beat_pool(stack_config),
        **{cron_job_name(key): cron_job_pool(stack_config, key) for key in stack_config.cron_jobs},
    }
    for name, spec in pod_specs(manifests):
        for pool_name, pool in stack_config.node_pools.items():
            assert can_land(spec, pool_name, pool) == (pool_name == expected[name]), (name, pool_name)


def test_prod_web_and_workers_cannot_land_on_each_others_pool(prod_config: StackConfig) -> None:
    web_pool, worker_pool = prod_config.web.node_pool, prod_config.worker.node_pool
    assert web_pool != worker_pool
    assert prod_config.node_pools[worker_pool].taints, "prod's worker pool is tainted"
    assert not prod_config.node_pools[web_pool].taints, "prod's web pool is not"
    manifests = render(prod_config)
    web = find(manifests, "Deployment", WEB)["spec"]["template"]["spec"]
    worker = find(manifests, "Deployment", WORKER)["spec"]["template"]["spec"]
    pools = prod_config.node_pools
    assert can_land(web, web_pool, pools[web_pool])
    assert not can_land(web, worker_pool, pools[worker_pool])
    assert can_land(worker, worker_pool, pools[worker_pool])
    # The worker tolerates the worker pool's taint, but its nodeSelector keeps it off the
    # untainted web pool.
    assert not can_land(worker, web_pool, pools[web_pool])
    assert worker["tolerations"] == [
        {"key": "workload", "operator": "Equal", "value": "worker", "effect": "NoSchedule"}
    ]
    assert "tolerations" not in web


def test_placement_tolerates_exactly_the_pools_taints() -> None:
    config = parse_stack_config(
        {
            "nodePools": {
                "default": {},
                "batch": {
                    "taints": [
                        {"key": "dedicated", "effect": "NoExecute"},
                        {"key": "workload", "value": "batch", "effect": "NoSchedule"},
                    ]
                },
            },
            "worker": {"nodePool": "batch"},
        }
    )
    placement = node_placement("batch", config.node_pools["batch"])
    assert placement == {
        "nodeSelector": {NODE_POOL_LABEL: "batch"},
        "tolerations": [
            {"key": "dedicated", "operator": "Exists", "effect": "NoExecute"},
            {"key": "workload", "operator": "Equal", "value": "batch", "effect": "NoSchedule"},
        ],
    }
    worker = find(render(config), "Deployment", WORKER)["spec"]["template"]["spec"]
    assert can_land(worker, "batch", config.node_pools["batch"])
    assert not can_land(worker, "default", config.node_pools["default"])


def test_requests_and_limits_follow_config(stack_config: StackConfig) -> None:
    manifests = render(stack_config)
    sections = [(WEB, stack_config.web), *((d.name, d.spec) for d in worker_deployments(stack_config))]
    for name, section in sections:
        container = find(manifests, "Deployment", name)["spec"]["template"]["spec"]["containers"][0]
        assert container["resources"] == {
            "requests": {"cpu": f"{section.cpu_millicores}m", "memory": f"{section.memory_mib}Mi"},
            "limits": {"memory": f"{section.memory_mib}Mi"},
        }


def test_every_container_is_locked_down_and_sized(stack_config: StackConfig) -> None:
    manifests = render(stack_config)
    specs = dict(pod_specs(manifests))
    assert set(specs) == {
        WEB, *worker_names(stack_config), migration_job_name(IMAGE), RECONCILER,
        *([BEAT] if stack_config.beat else []), *map(cron_job_name, stack_config.cron_jobs),
    }  # fmt: skip
    for name, spec in specs.items():
        assert spec["securityContext"] == {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "runAsGroup": 10001,
            "fsGroup": 10001,
            "seccompProfile": {"type": "RuntimeDefault"},
        }, name
        assert spec["automountServiceAccountToken"] is False
        assert spec["serviceAccountName"] in (WEB, WORKER, MIGRATE, RECONCILER, BEAT)
        assert {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}} in spec["volumes"]
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"] == {"drop": ["ALL"]}
            assert context["runAsNonRoot"] is True
            assert context["seccompProfile"] == {"type": "RuntimeDefault"}
            tmp = "proxy-tmp" if container["name"] == "proxy" else "tmp"
            assert {"name": tmp, "mountPath": "/tmp"} in container["volumeMounts"]
            assert set(container["resources"]["requests"]) == {"cpu", "memory"}
            assert container["resources"]["limits"] == {
                "memory": container["resources"]["requests"]["memory"]
            }
            assert "cpu" not in container["resources"]["limits"]
            if container["name"] == "proxy":
                assert "envFrom" not in container  # nginx needs neither settings nor secrets
                continue
            assert [source for source in container["envFrom"]] == [
                {"configMapRef": {"name": CONFIG_MAP}},
                {"secretRef": {"name": SECRET}},
            ]
            if name in (WEB, *worker_names(stack_config)):
                assert "livenessProbe" in container and "startupProbe" in container


def test_deployments_spread_across_zones(stack_config: StackConfig) -> None:
    manifests = render(stack_config)
    for name, component in ((WEB, WEB), *((name, WORKER) for name in worker_names(stack_config))):
        spec = find(manifests, "Deployment", name)["spec"]["template"]["spec"]
        zone = [c for c in spec["topologySpreadConstraints"] if c["topologyKey"] == "topology.kubernetes.io/zone"]
        assert len(zone) == 1
        # Counted per ReplicaSet (matchLabelKeys pod-template-hash), so one Deployment's pods
        # spread among themselves whatever the other worker Deployments do.
        assert zone[0]["labelSelector"]["matchLabels"] == selector_labels(component)
        assert zone[0]["matchLabelKeys"] == ["pod-template-hash"]


def test_one_disruption_budget_per_deployment_allowing_a_drain(stack_config: StackConfig) -> None:
    manifests = render(stack_config)
    selectors = {WEB: selector_labels(WEB), **{d.name: worker_selector(d) for d in worker_deployments(stack_config)}}
    assert {o["metadata"]["name"] for o in manifests if o["kind"] == "PodDisruptionBudget"} == set(selectors)
    for name, selector in selectors.items():
        budget = find(manifests, "PodDisruptionBudget", name)["spec"]
        assert budget["selector"]["matchLabels"] == selector
        assert find(manifests, "Deployment", name)["spec"]["selector"]["matchLabels"] == selector
        # With one replica (dev), maxUnavailable 1 still lets a node drain evict the pod.
        assert budget["maxUnavailable"] == 1


def test_literal_environment_variables_are_only_launcher_settings(stack_config: StackConfig) -> None:
    # A literal `env` value is stored in the Deployment (and the Pulumi state) in plain text:
    # only the launcher's settings are; the app's configuration and secrets come through envFrom.
    # A Deployment of `workers` adds its queues (read by the runtime package's launcher) and
    # its own task time limit (stack.workloads.worker.deployment_settings).
    # The metrics' settings (who the pod is, where its processes write samples, where a worker
    # serves them) are the platform's too, and the pod's and node's names come from the downward API.
    settings = {setting.name for setting in launch.SETTINGS} | set(METRICS_SETTINGS)
    if stack_config.workers:
        settings |= {"WORKER_QUEUES", "CELERY_TASK_TIME_LIMIT"}
    for _, spec in pod_specs(render(stack_config)):
        for container in [*spec["containers"], *spec.get("initContainers", [])]:
            assert set(literal_env(container)) <= settings
            for item in container.get("env", []):
                assert "value" in item or set(item["valueFrom"]) == {"fieldRef"}
