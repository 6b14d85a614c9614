"""The Kubernetes objects of the app, as plain dicts computed from the stack config.

Everything here is a pure function: no Pulumi engine, no cluster. The `Workloads` component
turns these dicts into `pulumi_kubernetes` resources, the offline plan writes them as YAML,
and the tests validate them against the Kubernetes OpenAPI schema.

Objects that refer to each other (the Deployments to the ConfigMap and Secret, the
TargetGroupBinding to the Service) take the names as arguments, because in the cluster the
ConfigMap and Secret are auto-named by Pulumi (see `Workloads`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from stack.config.model import NodePoolConfig, StackConfig, WebConfig, WorkerConfig
from stack.config.names import MIGRATE as MIGRATE, NAMESPACE as NAMESPACE, WEB as WEB, WORKER as WORKER
from stack.platform.node_pools import node_placement as node_placement
from stack.workloads import proxy

Manifest = dict[str, Any]

CONFIG_MAP = "app-config"
SECRET = "app-secrets"

HTTP_PORT = 8000
PROBE_PORT = 8001
"""The image's PROBE_BIND: /healthz and /readyz from a thread outside gunicorn's request pool."""
SERVICE_PORT = 80

RUN_AS_ID = 10001
"""The uid/gid the image's app user has; Pod Security "restricted" needs a non-root uid."""

SETTINGS_MODULE = "config.settings.production"
HEARTBEAT_FILE = "/tmp/celery-worker-heartbeat"
HEARTBEAT_MAX_AGE_SECONDS = 60
LOG_LEVEL = "INFO"

WEB_TERMINATION_MARGIN_SECONDS = 5
"""Slack on top of preStop + gunicorn's graceful timeout before the kubelet sends SIGKILL."""

WORKER_TERMINATION_MARGIN_SECONDS = 30
"""Slack on top of the task time limit: Celery's warm shutdown lets the running task finish,
then acknowledges it and closes the broker connection."""

CELERY_QUEUE = "jobs"
"""The one Celery queue: the web sends jobs to it, the workers consume it (CELERY_QUEUE in the
containers' environment; the service's default is the same name), and the worker ScaledObject
watches the Redis list of that name."""

MIGRATION_DEADLINE_SECONDS = 900
"""Longest a migration may run before the Job (and so `pulumi up`) fails."""

MIGRATION_BACKOFF_LIMIT = 1
"""One retry covers a transient failure (a database failover); a real migration error fails
twice quickly instead of hammering the database."""

WAIT_FOR_CREDENTIALS = "wait-for-credentials"
"""The migration pod's init container: `migrate` starts only once the pod has its Pod Identity
credentials (service/config/pod_credentials.py)."""
CREDENTIALS_TIMEOUT_SECONDS = 120
"""How long one pod waits for the Pod Identity agent to hand out its credentials."""
CREDENTIALS_NOT_INJECTED_EXIT_CODE = 75
"""config.pod_credentials.NOT_INJECTED: no credentials yet; the Job replaces the pod uncounted."""

PART_OF = "django-eks"


# --- metadata ---------------------------------------------------------------------------


def labels(component: str) -> dict[str, str]:
    """The labels of every object of one component; `selector_labels` is a stable subset."""
    return {**selector_labels(component), "app.kubernetes.io/part-of": PART_OF}


def selector_labels(component: str) -> dict[str, str]:
    # Selectors are immutable on Deployments: keep them to what never changes.
    return {"app.kubernetes.io/name": "django", "app.kubernetes.io/component": component}


def _metadata(name: str, component: str, namespace: str = NAMESPACE) -> dict[str, Any]:
    return {"name": name, "namespace": namespace, "labels": labels(component)}


def pod_security_version(config: StackConfig) -> str:
    # Pinned to the cluster's minor version rather than "latest", so a control-plane upgrade
    # cannot start rejecting pods by itself; the label moves with `cluster.version`.
    return f"v{config.cluster.version}"


def namespace(config: StackConfig) -> Manifest:
    """The app namespace: Pod Security "restricted" enforced, ALB readiness gates injected."""
    version = pod_security_version(config)
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": NAMESPACE,
            "labels": {
                "pod-security.kubernetes.io/enforce": "restricted",
                "pod-security.kubernetes.io/enforce-version": version,
                "pod-security.kubernetes.io/warn": "restricted",
                "pod-security.kubernetes.io/warn-version": version,
                # The controller's webhook adds a readiness gate to pods behind a
                # TargetGroupBinding, so a rollout only proceeds once the new pods are healthy
                # targets in the ALB, not merely Ready to the kubelet.
                "elbv2.k8s.aws/pod-readiness-gate-inject": "enabled",
                "app.kubernetes.io/part-of": PART_OF,
            },
        },
    }


def service_account(component: str) -> Manifest:
    """One identity per workload; none of them talks to the Kubernetes API."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": _metadata(component, component),
        "automountServiceAccountToken": False,
    }


# --- configuration ----------------------------------------------------------------------


def allowed_hosts(alb_dns_name: str, app_url: str) -> list[str]:
    """The app URL's host (loadBalancer.domainName when set) and the ALB's own name."""
    # Probes and ALB health checks use the pod IP as Host; the service answers them before
    # the ALLOWED_HOSTS check, so no pod IP or wildcard is needed here.
    hosts = [alb_dns_name]
    url_host = urlsplit(app_url).hostname
    if url_host and url_host not in hosts:
        hosts.append(url_host)
    return hosts


def csrf_trusted_origins(app_url: str) -> list[str]:
    return [app_url.rstrip("/")]


def app_settings(config: StackConfig, *, alb_dns_name: str, app_url: str) -> dict[str, str]:
    """The non-secret environment of every app container (the ConfigMap's data)."""
    from stack.config.memory import memory_settings
    from stack.workloads.reconciler import reconciler_settings  # it builds on this module

    https = config.load_balancer.certificate_arn is not None
    return {
        "DJANGO_SETTINGS_MODULE": SETTINGS_MODULE,
        "DJANGO_DEBUG": "false",
        "DJANGO_ALLOWED_HOSTS": ",".join(allowed_hosts(alb_dns_name, app_url)),
        "DJANGO_CSRF_TRUSTED_ORIGINS": ",".join(csrf_trusted_origins(app_url)),
        "DJANGO_LOG_LEVEL": LOG_LEVEL,
        # Without a certificate the ALB only speaks HTTP: redirecting to HTTPS would loop.
        "DJANGO_SECURE_SSL_REDIRECT": "true" if https else "false",
        "CELERY_TASK_TIME_LIMIT": str(config.worker.task_time_limit_seconds),
        "CELERY_VISIBILITY_TIMEOUT": str(config.worker.visibility_timeout_seconds),
        "CELERY_QUEUE": CELERY_QUEUE,
        # The web pod's proxy sizes its body limit from the same number.
        "JOBS_MAX_UPLOAD_BYTES": str(proxy.MAX_UPLOAD_BYTES),
        "CELERY_HEARTBEAT_FILE": HEARTBEAT_FILE,
        "PYTHONUNBUFFERED": "1",
        "API_IO_ENABLED": "true" if config.web.load_test_endpoint else "false",
        **reconciler_settings(config),
        **memory_settings(config),
    }


SECRET_KEYS = ("DJANGO_SECRET_KEY", "DATABASE_URL", "REDIS_URL")


def config_map(config: StackConfig, *, alb_dns_name: str, app_url: str) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(CONFIG_MAP, "config"),
        "data": app_settings(config, alb_dns_name=alb_dns_name, app_url=app_url),
    }


def secret(values: Mapping[str, str]) -> Manifest:
    """The Secret with `values` as stringData; in the cluster the values are secret Outputs."""
    missing = set(SECRET_KEYS) - set(values)
    if missing:
        raise ValueError(f"secret values missing: {', '.join(sorted(missing))}")
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _metadata(SECRET, "config"),
        "type": "Opaque",
        "stringData": {key: values[key] for key in SECRET_KEYS},
    }


# --- pods -------------------------------------------------------------------------------


def pod_security_context() -> dict[str, Any]:
    """What Pod Security "restricted" requires, plus a fixed uid so files in /tmp are ours."""
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS_ID,
        "runAsGroup": RUN_AS_ID,
        "fsGroup": RUN_AS_ID,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS_ID,
        "runAsGroup": RUN_AS_ID,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def resources(cpu_millicores: int, memory_mib: int) -> dict[str, Any]:
    # No CPU limit: CFS throttling would stall request threads and Celery heartbeats even when
    # the node has idle cores; the request already guarantees each pod its share. Memory is
    # not compressible, so its limit equals the request: a pod never relies on memory the
    # scheduler did not reserve, and an overrun is an OOM kill of that pod alone.
    memory = f"{memory_mib}Mi"
    return {
        "requests": {"cpu": f"{cpu_millicores}m", "memory": memory},
        "limits": {"memory": memory},
    }


def zone_spread(component: str) -> list[dict[str, Any]]:
    # ScheduleAnyway: a pool may have no node (or no room) in some zone, and the Cluster
    # Autoscaler cannot add one there when the pool is at maxSize or the zone is down;
    # DoNotSchedule would then leave pods Pending during a rollout or a zone outage.
    # Availability first, balance as a strong preference.
    return [
        {
            "maxSkew": 1,
            "topologyKey": key,
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": selector_labels(component)},
            # Count only pods of the same ReplicaSet, so a rollout spreads the new pods too.
            "matchLabelKeys": ["pod-template-hash"],
        }
        for key in ("topology.kubernetes.io/zone", "kubernetes.io/hostname")
    ]


def _env_from(config_map_name: str, secret_name: str) -> list[dict[str, Any]]:
    return [{"configMapRef": {"name": config_map_name}}, {"secretRef": {"name": secret_name}}]


def launch_command(process: str) -> list[str]:
    """The image's launcher for `process` (service/config/launch.py), exec form: it reads its
    settings from the container's env and execs the server, so SIGTERM reaches the server."""
    return ["python", "-m", "config.launch", process]


def env_list(settings: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"name": name, "value": value} for name, value in settings.items()]


_TMP_VOLUME = {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}}
_TMP_MOUNT = {"name": "tmp", "mountPath": "/tmp"}


def _pod_spec(
    *,
    component: str,
    pool_name: str,
    pool: NodePoolConfig,
    container: dict[str, Any],
    termination_grace_seconds: int,
    restart_policy: str = "Always",
    spread: bool = True,
    init_containers: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "serviceAccountName": component,
        "automountServiceAccountToken": False,
        "securityContext": pod_security_context(),
        "terminationGracePeriodSeconds": termination_grace_seconds,
        "restartPolicy": restart_policy,
        **({"initContainers": init_containers} if init_containers else {}),
        "containers": [container],
        "volumes": [dict(_TMP_VOLUME)],
        **node_placement(pool_name, pool),
    }
    if spread:
        spec["topologySpreadConstraints"] = zone_spread(component)
    return spec


def _pod_template(component: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"labels": labels(component)}, "spec": spec}


def _pool(config: StackConfig, name: str) -> NodePoolConfig:
    return config.node_pools[name]


# --- web --------------------------------------------------------------------------------


def web_settings(web: WebConfig) -> dict[str, str]:
    """The web launcher's settings (service/config/launch.py reads them and builds the server's
    flags): keep-alive above the ALB's idle timeout, the graceful timeout inside the pod's grace
    period, and the app on loopback behind the proxy (port 8000 is the proxy's, proxy.py)."""
    return {
        "WEB_SERVER": web.server,
        "WEB_BIND": proxy.app_bind(),
        "WEB_PROCESSES": str(web.gunicorn_workers),
        "WEB_THREADS": str(web.threads),
        "WEB_KEEP_ALIVE_SECONDS": str(web.keep_alive_seconds),
        "WEB_GRACEFUL_TIMEOUT_SECONDS": str(web.graceful_timeout_seconds),
        "WEB_TIMEOUT_SECONDS": str(web.timeout_seconds),
    }


def web_app_pre_stop_seconds(web: WebConfig) -> int:
    """The app's pause before SIGTERM: the ALB deregisters the pod, then the proxy drains through it."""
    return web.pre_stop_seconds + proxy.drain_seconds(web)


def web_termination_grace_seconds(web: WebConfig) -> int:
    # The grace period runs from the start of preStop: the pod must outlive the sleep (while the
    # ALB deregisters it), the proxy's drain, and then the app server's graceful shutdown.
    return web_app_pre_stop_seconds(web) + web.graceful_timeout_seconds + WEB_TERMINATION_MARGIN_SECONDS


def web_probes() -> dict[str, Any]:
    def http(path: str, **timing: int) -> dict[str, Any]:
        # On the probe port: slow clients holding every request thread must not make kubelet
        # restart (or unready) a pod that is only busy.
        return {"httpGet": {"path": path, "port": "probes"}, "timeoutSeconds": 3, **timing}

    return {
        # Up to 2 minutes for imports and the first database connection; liveness and
        # readiness start only after it succeeds.
        "startupProbe": http("/healthz", periodSeconds=2, failureThreshold=60),
        # /readyz checks the database and Redis: an outage takes pods out of the Service
        # without restarting them. /healthz never touches them, so liveness restarts only
        # a wedged process.
        "readinessProbe": http("/readyz", periodSeconds=5, failureThreshold=3),
        "livenessProbe": http("/healthz", periodSeconds=10, failureThreshold=3),
    }


def web_container(config: StackConfig, image: str, *, config_map_name: str, secret_name: str) -> dict[str, Any]:
    web = config.web
    container: dict[str, Any] = {
        "name": WEB,
        "image": image,
        "command": launch_command(WEB),
        "env": env_list(web_settings(web)),
        # Port 8000 (`http`) is the proxy's; the app listens on loopback behind it.
        "ports": [{"name": "probes", "containerPort": PROBE_PORT, "protocol": "TCP"}],
        "envFrom": _env_from(config_map_name, secret_name),
        "resources": resources(web.cpu_millicores, web.memory_mib),
        "securityContext": container_security_context(),
        "volumeMounts": [dict(_TMP_MOUNT)],
        **web_probes(),
    }
    # Keep serving while the controller deregisters the pod from the target group and the proxy
    # finishes the requests it holds; SIGTERM only comes after. The native sleep action (GA in
    # 1.32) needs no binary in the image.
    container["lifecycle"] = {"preStop": {"sleep": {"seconds": web_app_pre_stop_seconds(web)}}}
    return container


def web_deployment(
    config: StackConfig,
    image: str,
    *,
    proxy_image: str,
    config_map_name: str = CONFIG_MAP,
    secret_name: str = SECRET,
    target_group_binding: str = WEB,
) -> Manifest:
    """The gunicorn Deployment.

    `spec.replicas` is left out on purpose: the HPA owns the replica count. With Server-Side
    Apply a field that is absent from Pulumi's manifest is not owned by Pulumi, so `pulumi up`
    never resets what the HPA chose. The Deployment starts at the API default of one pod and
    the HPA raises it to `autoscaling.minReplicas` on its first sync.
    """
    web = config.web
    spec = _pod_spec(
        component=WEB,
        pool_name=web.node_pool,
        pool=_pool(config, web.node_pool),
        container=web_container(config, image, config_map_name=config_map_name, secret_name=secret_name),
        termination_grace_seconds=web_termination_grace_seconds(web),
    )
    # The buffering proxy in front of the app: slow clients wait in nginx, not in app threads.
    spec["containers"].append(proxy.proxy_container(web, container_security_context(), proxy_image))
    spec["volumes"] += proxy.proxy_volumes()
    template = _pod_template(WEB, spec)
    template["metadata"]["annotations"] = {"django-eks/proxy-config": proxy.config_checksum(web)}
    if target_group_binding != WEB:
        # A new binding (a replaced target group) rolls the pods: only pods created after it
        # carry its readiness gate, so the rollout ends once they are healthy in the new group.
        template["metadata"]["annotations"]["django-eks/target-group-binding"] = target_group_binding
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(WEB, WEB),
        "spec": {
            "selector": {"matchLabels": selector_labels(WEB)},
            # Never below the current capacity during a rollout; a new pod must pass the ALB
            # health check (readiness gate) before an old one goes. A quarter surges at once,
            # so a rollout at maxReplicas stays well inside Pulumi's await timeout.
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"},
            },
            "revisionHistoryLimit": 5,
            "template": template,
        },
    }


def web_service() -> Manifest:
    """ClusterIP Service whose endpoints the TargetGroupBinding registers as IP targets."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(WEB, WEB),
        "spec": {
            "type": "ClusterIP",
            "selector": selector_labels(WEB),
            "ports": [{"name": "http", "port": SERVICE_PORT, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def _hpa(component: str, *, min_replicas: int, max_replicas: int, target_cpu_percent: int) -> Manifest:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _metadata(component, component),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": component},
            "minReplicas": min_replicas,
            "maxReplicas": max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": target_cpu_percent},
                    },
                }
            ],
            "behavior": {
                # Scale down slowly: a burst that just ended often comes back.
                "scaleDown": {
                    "stabilizationWindowSeconds": 300,
                    "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}],
                },
            },
        },
    }


def web_hpa(config: StackConfig) -> Manifest:
    scaling = config.web.autoscaling
    return _hpa(
        WEB,
        min_replicas=scaling.min_replicas,
        max_replicas=scaling.max_replicas,
        target_cpu_percent=scaling.target_cpu_percent,
    )


def pod_disruption_budget(component: str) -> Manifest:
    # maxUnavailable rather than minAvailable: a single-replica dev Deployment can still be
    # drained (its pod is evicted and rescheduled), while bigger ones lose one pod at a time.
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _metadata(component, component),
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": selector_labels(component)},
            # Let a drain evict a pod that never became healthy (a crash loop would otherwise
            # block node rotation forever).
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
        },
    }


# --- worker -----------------------------------------------------------------------------


def worker_settings(worker: WorkerConfig) -> dict[str, str]:
    """The worker launcher's settings (service/config/launch.py says why each of its flags)."""
    return {"WORKER_CONCURRENCY": str(worker.concurrency)}


def heartbeat_command() -> list[str]:
    # The worker touches the heartbeat file; `celery inspect ping` would cost seconds of CPU per
    # probe and restart healthy workers whenever the broker blips.
    return ["python", "-m", "config.heartbeat", "--max-age", str(HEARTBEAT_MAX_AGE_SECONDS)]


def worker_termination_grace_seconds(worker: WorkerConfig) -> int:
    # SIGTERM starts Celery's warm shutdown: the running task may take up to its time limit.
    return worker.task_time_limit_seconds + WORKER_TERMINATION_MARGIN_SECONDS


def worker_probes() -> dict[str, Any]:
    def exec_probe(**timing: int) -> dict[str, Any]:
        # Starting Python and Django takes a second or two; give the probe room.
        return {"exec": {"command": heartbeat_command()}, "timeoutSeconds": 10, **timing}

    return {
        "startupProbe": exec_probe(periodSeconds=5, failureThreshold=36),
        "livenessProbe": exec_probe(periodSeconds=30, failureThreshold=3),
    }


def worker_container(config: StackConfig, image: str, *, config_map_name: str, secret_name: str) -> dict[str, Any]:
    worker = config.worker
    return {
        "name": WORKER,
        "image": image,
        "command": launch_command(WORKER),
        "env": env_list(worker_settings(worker)),
        "envFrom": _env_from(config_map_name, secret_name),
        "resources": resources(worker.cpu_millicores, worker.memory_mib),
        "securityContext": container_security_context(),
        "volumeMounts": [dict(_TMP_MOUNT)],
        **worker_probes(),
    }


def worker_deployment(
    config: StackConfig,
    image: str,
    *,
    config_map_name: str = CONFIG_MAP,
    secret_name: str = SECRET,
) -> Manifest:
    """The Celery worker Deployment; its replica count belongs to KEDA's HPA (the ScaledObject)."""
    worker = config.worker
    spec = _pod_spec(
        component=WORKER,
        pool_name=worker.node_pool,
        pool=_pool(config, worker.node_pool),
        container=worker_container(config, image, config_map_name=config_map_name, secret_name=secret_name),
        termination_grace_seconds=worker_termination_grace_seconds(worker),
    )
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(WORKER, WORKER),
        "spec": {
            "selector": {"matchLabels": selector_labels(WORKER)},
            # Old workers finish their task while new ones start: never less processing power.
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "revisionHistoryLimit": 5,
            "template": _pod_template(WORKER, spec),
        },
    }


# --- migrations -------------------------------------------------------------------------


def migration_job_name(image: str) -> str:
    """One Job per image: a new image means a new Job, the same image never migrates twice."""
    digest = hashlib.sha256(image.encode()).hexdigest()[:12]
    return f"{MIGRATE}-{digest}"


def migration_job(
    config: StackConfig,
    image: str,
    *,
    config_map_name: str = CONFIG_MAP,
    secret_name: str = SECRET,
) -> Manifest:
    """`manage.py migrate` for `image`, run before the Deployments roll out.

    No `ttlSecondsAfterFinished`: Pulumi keeps the Job in its state, and a Job the cluster
    deleted by TTL would be seen as missing on the next refresh and created again, running the
    migrations again. The finished Job stays until the image changes; then Pulumi creates the
    next one and deletes the old one.
    """
    web = config.web
    container = {
        "name": MIGRATE,
        "image": image,
        "command": launch_command(MIGRATE),
        "envFrom": _env_from(config_map_name, secret_name),
        "resources": resources(web.cpu_millicores, web.memory_mib),
        "securityContext": container_security_context(),
        "volumeMounts": [dict(_TMP_MOUNT)],
    }
    spec = _pod_spec(
        component=MIGRATE,
        pool_name=web.node_pool,
        pool=_pool(config, web.node_pool),
        container=container,
        termination_grace_seconds=30,
        restart_policy="Never",
        spread=False,
        init_containers=[credentials_wait_container(image)],
    )
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            **_metadata(migration_job_name(image), MIGRATE),
            "annotations": {
                # A failed migration leaves an unready Job; without this, the next `pulumi up`
                # would keep waiting on it instead of running the migration again.
                "pulumi.com/replaceUnready": "true",
            },
        },
        "spec": {
            "backoffLimit": MIGRATION_BACKOFF_LIMIT,
            "activeDeadlineSeconds": MIGRATION_DEADLINE_SECONDS,
            # A pod that never got its credentials (created while the Pod Identity association
            # was not yet in effect) is replaced without spending the one retry, which stays
            # for a failure of the migration itself; activeDeadlineSeconds bounds the attempts.
            # https://kubernetes.io/docs/concepts/workloads/controllers/job/#pod-failure-policy
            "podFailurePolicy": {
                "rules": [
                    {
                        "action": "Ignore",
                        "onExitCodes": {
                            "containerName": WAIT_FOR_CREDENTIALS,
                            "operator": "In",
                            "values": [CREDENTIALS_NOT_INJECTED_EXIT_CODE],
                        },
                    }
                ]
            },
            "template": _pod_template(MIGRATE, spec),
        },
    }


def credentials_wait_container(image: str) -> dict[str, Any]:
    """Waits, before `migrate`, until the Pod Identity agent hands this pod its credentials.

    EKS Pod Identity associations take seconds to be effective after they are created (the
    Job is created right after its association): migrations that write to S3 would otherwise
    fail on a missing credential and spend the Job's retry on it.
    """
    return {
        "name": WAIT_FOR_CREDENTIALS,
        "image": image,
        "command": launch_command(WAIT_FOR_CREDENTIALS),
        "env": env_list({"CREDENTIALS_TIMEOUT_SECONDS": str(CREDENTIALS_TIMEOUT_SECONDS)}),
        "resources": resources(100, 128),
        "securityContext": container_security_context(),
    }


# --- the ALB ----------------------------------------------------------------------------


def target_group_binding(target_group_arn: str, name: str = WEB) -> Manifest:
    """Registers the web Service's pod IPs in the target group the platform created.

    No `networking` section: the platform's security groups already let the ALB reach the
    pods on the HTTP port.
    """
    return {
        "apiVersion": "elbv2.k8s.aws/v1beta1",
        "kind": "TargetGroupBinding",
        "metadata": _metadata(name, WEB),
        "spec": {
            "serviceRef": {"name": WEB, "port": SERVICE_PORT},
            "targetGroupARN": target_group_arn,
            "targetType": "ip",
        },
    }


# --- everything ---------------------------------------------------------------------------


PLACEHOLDER_SECRETS = {
    "DJANGO_SECRET_KEY": "placeholder-django-secret-key",
    "DATABASE_URL": "postgres://app:placeholder-database-password@database:5432/app?sslmode=require",
    "REDIS_URL": "rediss://:placeholder-redis-token@redis:6379/0?ssl_cert_reqs=required",
}
"""Stand-ins for the Secret's values in offline renderings; never real credentials."""


def app_manifests(
    config: StackConfig,
    *,
    image: str,
    proxy_image: str,
    alb_dns_name: str,
    app_url: str,
    target_group_arn: str,
    secret_values: Mapping[str, str] = PLACEHOLDER_SECRETS,
) -> list[Manifest]:
    """Every object the app namespace holds, in creation order."""
    from stack.workloads.reconciler import RECONCILER, reconciler_cronjob  # it builds on this module

    return [
        namespace(config),
        *(service_account(c) for c in (WEB, WORKER, MIGRATE, RECONCILER)),
        config_map(config, alb_dns_name=alb_dns_name, app_url=app_url),
        secret(secret_values),
        migration_job(config, image),
        web_service(),
        target_group_binding(target_group_arn),
        proxy.proxy_config_map(config.web, namespace=NAMESPACE, labels=labels(proxy.PROXY)),
        web_deployment(config, image, proxy_image=proxy_image),
        web_hpa(config),
        pod_disruption_budget(WEB),
        worker_deployment(config, image),
        pod_disruption_budget(WORKER),
        reconciler_cronjob(config, image),
    ]
