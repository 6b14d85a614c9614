"""The rendered Kubernetes objects, for every stack file: config values arrive, placement is
right, the shutdown and probe invariants hold, nothing secret leaks, and every object is valid
for the cluster's Kubernetes version."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from config import launch
from stack.config.model import NODE_POOL_LABEL, NodePoolConfig, StackConfig
from stack.config.rules import parse_stack_config
from stack.platform.iam import trust_policy
from stack.addons import load_balancer_controller as lbc
from stack.workloads import manifests as m
from stack.workloads import proxy
from stack.tools.offline import S3_PREFIX_LIST_CIDRS
from stack.workloads import rendered_manifests
from tests.infra.support.stack_files import project_config

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/django-eks:0.1.0"
PROXY_IMAGE = proxy.proxy_image("123456789012.dkr.ecr.us-east-1.amazonaws.com", "dev-ecr-public")
ALB_DNS = "django-eks-alb-1234567890.us-east-1.elb.amazonaws.com"
TARGET_GROUP_ARN = (
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/django-eks-web/0123456789abcdef"
)


def render(config: StackConfig, app_url: str | None = None) -> list[dict[str, Any]]:
    return rendered_manifests(
        config,
        image=IMAGE,
        proxy_image=PROXY_IMAGE,
        alb_dns_name=ALB_DNS,
        app_url=app_url or f"http://{ALB_DNS}",
        target_group_arn=TARGET_GROUP_ARN,
        s3_cidrs=list(S3_PREFIX_LIST_CIDRS),
    )


def find(manifests: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    matches = [
        o for o in manifests if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)
    ]
    assert len(matches) == 1, f"expected one {kind} {name or ''}, found {len(matches)}"
    return matches[0]


def pod_specs(manifests: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for o in manifests:
        if o["kind"] in ("Deployment", "Job"):
            yield o["metadata"]["name"], o["spec"]["template"]["spec"]


def option(command: list[str], flag: str) -> str:
    """A flag's value, given as `--flag value` or `--flag=value`."""
    for i, arg in enumerate(command):
        if arg == flag:
            return command[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    raise ValueError(f"{flag} not in {command}")


def launched(container: dict[str, Any]) -> list[str]:
    """The command line the image's launcher builds from a rendered container's command and env."""
    assert container["command"][:3] == ["python", "-m", "config.launch"]
    process, *extra = container["command"][3:]
    env = {item["name"]: item["value"] for item in container.get("env", [])}
    return launch.command(process, env, extra)


# --- placement ----------------------------------------------------------------------------


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
    expected = {
        m.WEB: stack_config.web.node_pool,
        m.WORKER: stack_config.worker.node_pool,
        m.migration_job_name(IMAGE): stack_config.web.node_pool,
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
    web = find(manifests, "Deployment", m.WEB)["spec"]["template"]["spec"]
    worker = find(manifests, "Deployment", m.WORKER)["spec"]["template"]["spec"]
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
    placement = m.node_placement("batch", config.node_pools["batch"])
    assert placement == {
        "nodeSelector": {NODE_POOL_LABEL: "batch"},
        "tolerations": [
            {"key": "dedicated", "operator": "Exists", "effect": "NoExecute"},
            {"key": "workload", "operator": "Equal", "value": "batch", "effect": "NoSchedule"},
        ],
    }
    worker = find(render(config), "Deployment", m.WORKER)["spec"]["template"]["spec"]
    assert can_land(worker, "batch", config.node_pools["batch"])
    assert not can_land(worker, "default", config.node_pools["default"])


# --- config values reach the manifests ----------------------------------------------------


def test_gunicorn_command_follows_config(stack_config: StackConfig) -> None:
    stack_config = stack_config.model_copy(update={"web": stack_config.web.model_copy(update={"server": "gunicorn"})})
    web = stack_config.web
    container = find(render(stack_config), "Deployment", m.WEB)["spec"]["template"]["spec"]["containers"][0]
    command = launched(container)
    assert command[0].endswith("gunicorn") and command[1:3] == ["--config", "gunicorn.conf.py"]
    assert command[-1] == "config.wsgi"
    assert option(command, "--bind") == "127.0.0.1:8080"  # behind the pod's proxy
    assert option(command, "--workers") == str(web.gunicorn_workers)
    assert option(command, "--threads") == str(web.threads)
    assert option(command, "--keep-alive") == str(web.keep_alive_seconds)
    assert int(option(command, "--keep-alive")) > stack_config.load_balancer.idle_timeout_seconds
    assert option(command, "--graceful-timeout") == str(web.graceful_timeout_seconds)
    assert option(command, "--timeout") == str(web.timeout_seconds)
    assert container["image"] == IMAGE
    assert container["ports"] == [{"name": "probes", "containerPort": 8001, "protocol": "TCP"}]


def test_celery_command_follows_config(stack_config: StackConfig) -> None:
    container = find(render(stack_config), "Deployment", m.WORKER)["spec"]["template"]["spec"]["containers"][0]
    command = launched(container)
    assert command[0].endswith("celery") and command[1:4] == ["--app", "config", "worker"]
    assert option(command, "--concurrency") == str(stack_config.worker.concurrency)
    assert option(command, "--prefetch-multiplier") == "1"
    assert "ports" not in container


def test_requests_and_limits_follow_config(stack_config: StackConfig) -> None:
    manifests = render(stack_config)
    for name, section in ((m.WEB, stack_config.web), (m.WORKER, stack_config.worker)):
        container = find(manifests, "Deployment", name)["spec"]["template"]["spec"]["containers"][0]
        assert container["resources"] == {
            "requests": {"cpu": f"{section.cpu_millicores}m", "memory": f"{section.memory_mib}Mi"},
            "limits": {"memory": f"{section.memory_mib}Mi"},
        }


def test_autoscaler_bounds_follow_config(stack_config: StackConfig) -> None:
    manifests = render(stack_config)
    web = find(manifests, "HorizontalPodAutoscaler", m.WEB)["spec"]
    assert (web["minReplicas"], web["maxReplicas"]) == (
        stack_config.web.autoscaling.min_replicas,
        stack_config.web.autoscaling.max_replicas,
    )
    assert web["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": m.WEB}
    assert web["metrics"][0]["resource"]["target"]["averageUtilization"] == (
        stack_config.web.autoscaling.target_cpu_percent
    )
    # The workers scale on their queue (KEDA's ScaledObject), not on CPU.
    assert [o for o in manifests if o["kind"] == "HorizontalPodAutoscaler"] == [
        find(manifests, "HorizontalPodAutoscaler", m.WEB)
    ]
    worker = find(manifests, "ScaledObject", m.WORKER)["spec"]
    assert (worker["minReplicaCount"], worker["maxReplicaCount"]) == (
        stack_config.worker.autoscaling.min_replicas,
        stack_config.worker.autoscaling.max_replicas,
    )
    assert worker["scaleTargetRef"]["name"] == m.WORKER


def test_deployments_leave_replicas_to_the_autoscaler(stack_config: StackConfig) -> None:
    # With Server-Side Apply, a replicas field in Pulumi's manifest would be re-applied on every
    # `pulumi up`, undoing the HPA's choice.
    manifests = render(stack_config)
    for name in (m.WEB, m.WORKER):
        deployment = find(manifests, "Deployment", name)
        assert "replicas" not in deployment["spec"]
        assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_app_settings_follow_config(stack_config: StackConfig) -> None:
    data = find(render(stack_config), "ConfigMap", m.CONFIG_MAP)["data"]
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
        return find(render(config), "ConfigMap", m.CONFIG_MAP)["data"]["API_IO_ENABLED"]

    assert api_io() == "false"
    assert api_io(loadTestEndpoint=True) == "true"
    # The experiment stack measures it with `make load`; production keeps it off.
    assert parse_stack_config(project_config("exp-c5-workers")).web.load_test_endpoint
    assert not parse_stack_config(project_config("prod")).web.load_test_endpoint


def test_allowed_hosts_include_a_custom_domain() -> None:
    assert m.allowed_hosts(ALB_DNS, f"http://{ALB_DNS}") == [ALB_DNS]
    assert m.allowed_hosts(ALB_DNS, "https://app.example.com/") == [ALB_DNS, "app.example.com"]


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
    data = find(render(config, app_url="https://app.example.com"), "ConfigMap", m.CONFIG_MAP)["data"]
    assert data["DJANGO_SECURE_SSL_REDIRECT"] == "true"
    assert data["DJANGO_CSRF_TRUSTED_ORIGINS"] == "https://app.example.com"


# --- invariants -------------------------------------------------------------------------------


def keep_alive_seconds(command: list[str]) -> int:
    """The idle keep-alive of either server's command (gunicorn --keep-alive, uWSGI --http-keepalive=)."""
    return int(option(command, "--http-keepalive" if command[0].endswith("uwsgi") else "--keep-alive"))


def graceful_seconds(command: list[str]) -> int:
    return int(option(command, "--worker-reload-mercy" if command[0].endswith("uwsgi") else "--graceful-timeout"))


def test_keep_alive_outlasts_the_alb_idle_timeout(stack_config: StackConfig) -> None:
    # What the server the pod's launcher starts keeps, from the env the stack renders.
    container = find(render(stack_config), "Deployment", m.WEB)["spec"]["template"]["spec"]["containers"][0]
    assert keep_alive_seconds(launched(container)) > stack_config.load_balancer.idle_timeout_seconds


def test_web_grace_period_covers_pre_stop_and_graceful_timeout(stack_config: StackConfig) -> None:
    spec = find(render(stack_config), "Deployment", m.WEB)["spec"]["template"]["spec"]
    container = spec["containers"][0]
    pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    # The app pauses while the target deregisters and then while the proxy drains through it.
    assert pre_stop == stack_config.web.pre_stop_seconds + stack_config.web.graceful_timeout_seconds
    graceful = graceful_seconds(launched(container))
    assert spec["terminationGracePeriodSeconds"] > pre_stop + graceful


def test_app_outlives_the_proxy_drain_even_without_a_pause() -> None:
    config = parse_stack_config({"web": {"preStopSeconds": 0}})
    container = m.web_container(config, IMAGE, config_map_name="c", secret_name="s")
    assert container["lifecycle"]["preStop"]["sleep"]["seconds"] == config.web.graceful_timeout_seconds
    assert m.web_termination_grace_seconds(config.web) >= 2 * config.web.graceful_timeout_seconds


def test_worker_grace_period_outlasts_the_task_time_limit(stack_config: StackConfig) -> None:
    spec = find(render(stack_config), "Deployment", m.WORKER)["spec"]["template"]["spec"]
    assert spec["terminationGracePeriodSeconds"] > stack_config.worker.task_time_limit_seconds


def test_probes(stack_config: StackConfig) -> None:
    manifests = render(stack_config)
    web = find(manifests, "Deployment", m.WEB)["spec"]["template"]["spec"]["containers"][0]
    # Kubelet probes go to the probe server's port, answered outside the request threads.
    assert {"name": "probes", "containerPort": 8001, "protocol": "TCP"} in web["ports"]
    assert web["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "probes"}
    assert web["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "probes"}
    assert web["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "probes"}
    worker = find(manifests, "Deployment", m.WORKER)["spec"]["template"]["spec"]["containers"][0]
    heartbeat = ["python", "-m", "config.heartbeat", "--max-age", "60"]
    assert worker["livenessProbe"]["exec"]["command"] == heartbeat
    assert worker["startupProbe"]["exec"]["command"] == heartbeat
    assert "readinessProbe" not in worker
    # Liveness may only start judging once startup succeeded; the startup window must be
    # long enough for the first heartbeat.
    startup = worker["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 60


def test_every_container_is_locked_down_and_sized(stack_config: StackConfig) -> None:
    manifests = render(stack_config)
    specs = dict(pod_specs(manifests))
    assert set(specs) == {m.WEB, m.WORKER, m.migration_job_name(IMAGE)}
    for name, spec in specs.items():
        assert spec["securityContext"] == {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "runAsGroup": 10001,
            "fsGroup": 10001,
            "seccompProfile": {"type": "RuntimeDefault"},
        }, name
        assert spec["automountServiceAccountToken"] is False
        assert spec["serviceAccountName"] in (m.WEB, m.WORKER, m.MIGRATE)
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
                {"configMapRef": {"name": m.CONFIG_MAP}},
                {"secretRef": {"name": m.SECRET}},
            ]
            if name in (m.WEB, m.WORKER):
                assert "livenessProbe" in container and "startupProbe" in container


def test_deployments_spread_across_zones(stack_config: StackConfig) -> None:
    manifests = render(stack_config)
    for name in (m.WEB, m.WORKER):
        spec = find(manifests, "Deployment", name)["spec"]["template"]["spec"]
        zone = [c for c in spec["topologySpreadConstraints"] if c["topologyKey"] == "topology.kubernetes.io/zone"]
        assert len(zone) == 1
        assert zone[0]["labelSelector"]["matchLabels"] == m.selector_labels(name)


def test_one_disruption_budget_per_deployment_allowing_a_drain(stack_config: StackConfig) -> None:
    manifests = render(stack_config)
    for name in (m.WEB, m.WORKER):
        budget = find(manifests, "PodDisruptionBudget", name)["spec"]
        assert budget["selector"]["matchLabels"] == m.selector_labels(name)
        # With one replica (dev), maxUnavailable 1 still lets a node drain evict the pod.
        assert budget["maxUnavailable"] == 1


def test_namespace_enforces_restricted_pod_security_and_readiness_gates(stack_config: StackConfig) -> None:
    labels = find(render(stack_config), "Namespace")["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert labels["pod-security.kubernetes.io/enforce-version"] == f"v{stack_config.cluster.version}"
    assert labels["elbv2.k8s.aws/pod-readiness-gate-inject"] == "enabled"


def test_service_accounts_mount_no_token(stack_config: StackConfig) -> None:
    accounts = [o for o in render(stack_config) if o["kind"] == "ServiceAccount"]
    assert {a["metadata"]["name"] for a in accounts} == {m.WEB, m.WORKER, m.MIGRATE, "reconciler"}
    assert all(a["automountServiceAccountToken"] is False for a in accounts)


def test_everything_lives_in_the_app_namespace(stack_config: StackConfig) -> None:
    for o in render(stack_config):
        if o["kind"] != "Namespace":
            assert o["metadata"]["namespace"] == m.NAMESPACE, o["kind"]


# --- migrations ---------------------------------------------------------------------------


def test_migration_job_runs_once_per_image(stack_config: StackConfig) -> None:
    job = find(render(stack_config), "Job")
    assert job["metadata"]["name"] == m.migration_job_name(IMAGE)
    assert m.migration_job_name(IMAGE) == m.migration_job_name(IMAGE)
    assert m.migration_job_name(IMAGE) != m.migration_job_name(IMAGE.replace("0.1.0", "0.1.1"))
    assert len(job["metadata"]["name"]) <= 63
    spec = job["spec"]
    assert "ttlSecondsAfterFinished" not in spec
    assert 0 <= spec["backoffLimit"] <= 2
    assert spec["activeDeadlineSeconds"] > 0
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert launched(pod["containers"][0])[1:] == ["manage.py", "migrate", "--noinput"]
    assert pod["containers"][0]["image"] == IMAGE


# --- the ALB ------------------------------------------------------------------------------


def test_target_group_binding_points_the_target_group_at_the_web_service(stack_config: StackConfig) -> None:
    manifests = render(stack_config)
    binding = find(manifests, "TargetGroupBinding")
    service = find(manifests, "Service", m.WEB)
    assert binding["spec"] == {
        "serviceRef": {"name": m.WEB, "port": service["spec"]["ports"][0]["port"]},
        "targetGroupARN": TARGET_GROUP_ARN,
        "targetType": "ip",
    }
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    web = find(manifests, "Deployment", m.WEB)
    assert web["spec"]["template"]["metadata"]["labels"].items() >= service["spec"]["selector"].items()


def test_controller_values_name_cluster_region_and_vpc() -> None:
    values = lbc.chart_values(cluster_name="django-eks-prod", region="eu-west-1", vpc_id="vpc-0123")
    assert values["clusterName"] == "django-eks-prod"
    assert values["region"] == "eu-west-1"
    assert values["vpcId"] == "vpc-0123"
    assert values["replicaCount"] == 2
    assert values["serviceAccount"]["name"] == lbc.SERVICE_ACCOUNT


def test_controller_trust_policy_is_pod_identity() -> None:
    (statement,) = trust_policy()["Statement"]
    assert statement["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    assert sorted(statement["Action"]) == ["sts:AssumeRole", "sts:TagSession"]


def test_controller_policy_is_the_published_one_and_fits_a_managed_policy() -> None:
    document = lbc.iam_policy_document()
    actions = {a for s in document["Statement"] for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert "elasticloadbalancing:RegisterTargets" in actions
    assert "elasticloadbalancing:DeregisterTargets" in actions
    assert len(lbc.compact_json(document)) <= 6144


# --- secrets --------------------------------------------------------------------------------


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
        assert any(part in value for value in m.PLACEHOLDER_SECRETS.values())
    for o in manifests:
        if o["kind"] == "Secret":
            continue
        leaked = [s for s in strings(o) for part in secret_parts if part in s]
        assert not leaked, f"{o['kind']} {o['metadata']['name']} holds {leaked}"
    secret = find(manifests, "Secret", m.SECRET)
    assert set(secret["stringData"]) == set(m.SECRET_KEYS)
    config_keys = set(find(manifests, "ConfigMap", m.CONFIG_MAP)["data"])
    assert not config_keys & set(m.SECRET_KEYS)


def test_literal_environment_variables_are_only_launcher_settings(stack_config: StackConfig) -> None:
    # A literal `env` value is stored in the Deployment (and the Pulumi state) in plain text:
    # only the launcher's settings are; the app's configuration and secrets come through envFrom.
    settings = {setting.name for setting in launch.SETTINGS}
    for _, spec in pod_specs(render(stack_config)):
        for container in [*spec["containers"], *spec.get("initContainers", [])]:
            assert {item["name"] for item in container.get("env", [])} <= settings


def test_secret_needs_every_value() -> None:
    with pytest.raises(ValueError, match="REDIS_URL"):
        m.secret({"DJANGO_SECRET_KEY": "x", "DATABASE_URL": "y"})


# --- schemas ----------------------------------------------------------------------------------


def cluster_version(config: StackConfig) -> str:
    return f"{config.cluster.version}.0"


def test_every_core_object_validates_against_the_cluster_schema(stack_config: StackConfig) -> None:
    for o in render(stack_config):
        if o["apiVersion"].startswith(("elbv2.k8s.aws/", "keda.sh/")):
            continue  # custom resources: validated against their bundled CRDs
        try:
            kubernetes_validate.validate(o, cluster_version(stack_config), strict=True)
        except kubernetes_validate.ValidationError as e:
            pytest.fail(f"{o['kind']} {o['metadata']['name']}: {e.message} at {list(e.caught.path)}")


def _strict(schema: Any) -> Any:
    """The CRD schema with unknown fields rejected, as the API server prunes them silently."""
    if isinstance(schema, dict):
        schema = {k: _strict(v) for k, v in schema.items()}
        if schema.get("type") == "object" and "properties" in schema and "additionalProperties" not in schema:
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    return schema


@functools.cache
def crd_schemas() -> dict[tuple[str, str], Any]:
    schemas = {}
    for crd in yaml.safe_load_all(lbc.CRDS_FILE.read_text()):
        if not crd:
            continue
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            schema = _strict(version["schema"]["openAPIV3Schema"])
            # metadata is validated by the API server's ObjectMeta, not by the CRD.
            schema["properties"]["metadata"] = {"type": "object"}
            schemas[(f"{group}/{version['name']}", kind)] = schema
    return schemas


def test_target_group_binding_validates_against_the_bundled_crd(stack_config: StackConfig) -> None:
    binding = find(render(stack_config), "TargetGroupBinding")
    schema = crd_schemas()[(binding["apiVersion"], binding["kind"])]
    jsonschema.validate(binding, schema)
    kubernetes_validate.validate(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": binding["metadata"]},
        cluster_version(stack_config),
        strict=True,
    )


def test_strict_crd_schema_rejects_unknown_fields() -> None:
    schema = crd_schemas()[("elbv2.k8s.aws/v1beta1", "TargetGroupBinding")]
    binding = m.target_group_binding(TARGET_GROUP_ARN)
    binding["spec"]["targetGroupArn"] = TARGET_GROUP_ARN
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(binding, schema)


def test_bundled_crd_version_is_the_one_the_controller_stores() -> None:
    crd = next(
        d
        for d in yaml.safe_load_all(lbc.CRDS_FILE.read_text())
        if d and d["spec"]["names"]["kind"] == "TargetGroupBinding"
    )
    stored = [v["name"] for v in crd["spec"]["versions"] if v.get("storage")]
    assert m.target_group_binding("")["apiVersion"] == f"elbv2.k8s.aws/{stored[0]}"


def test_chart_pin_matches_the_bundled_policy_and_crds() -> None:
    # The IAM policy and CRDs are copies from one controller release; the chart must install
    # that same release.
    sources = (lbc.DATA_DIR.parent / "SOURCES.md").read_text()
    section = sources[sources.index("## aws-load-balancer-controller/") :]
    assert f"v{lbc.CHART_VERSION}" in section
