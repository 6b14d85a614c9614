"""The web tier: the app server's settings and probes, its container beside the buffering proxy,
the Deployment, the Service, the HPA, and the TargetGroupBinding that puts the pods behind the ALB."""

from __future__ import annotations

from typing import Any

from stack.config.model import AppConfig, StackConfig, WebConfig
from stack.config.names import PROBE_PORT, WEB
from stack.workloads import proxy
from stack.workloads.pods import (
    CONFIG_MAP,
    METRICS_MOUNT,
    METRICS_VOLUME,
    SECRET,
    TMP_MOUNT,
    Manifest,
    container_security_context,
    env_from,
    env_list,
    launch_command,
    metadata,
    metrics_env,
    metrics_port,
    pod_spec,
    pod_template,
    resources,
    scrape_annotations,
    selector_labels,
)

HTTP_PORT = 8000
SERVICE_PORT = 80

WEB_TERMINATION_MARGIN_SECONDS = 5
"""Slack on top of preStop + the server's graceful timeout before the kubelet sends SIGKILL."""


def web_settings(web: WebConfig, app: AppConfig | None = None) -> dict[str, str]:
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
        # An app's probe server and WSGI callable (the demo's image sets its own).
        **(app_web_settings(app) if app is not None else {}),
    }


def app_web_settings(app: AppConfig) -> dict[str, str]:
    """What the runtime package's web launcher needs of an app beyond the server's flags."""
    return {"APP_WSGI": app.wsgi, "PROBE_BIND": f"0.0.0.0:{PROBE_PORT}", "APP_HEALTH_PATH": app.health_path}


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
        return {"httpGet": {"path": path, "port": PROBE_PORT}, "timeoutSeconds": 3, **timing}

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
        "command": launch_command(WEB, config.app),
        "env": [*env_list(web_settings(web, config.app)), *metrics_env(WEB)],
        # Port 8000 (`http`) is the proxy's; the app listens on loopback behind it. The probe
        # server also serves /metrics, which the collector scrapes on the port named `metrics`.
        "ports": [metrics_port(PROBE_PORT)],
        "envFrom": env_from(config_map_name, secret_name),
        "resources": resources(web.cpu_millicores, web.memory_mib),
        "securityContext": container_security_context(),
        "volumeMounts": [dict(TMP_MOUNT), dict(METRICS_MOUNT)],
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
    spec = pod_spec(
        component=WEB,
        pool_name=web.node_pool,
        pool=config.node_pools[web.node_pool],
        container=web_container(config, image, config_map_name=config_map_name, secret_name=secret_name),
        termination_grace_seconds=web_termination_grace_seconds(web),
    )
    # The buffering proxy in front of the app: slow clients wait in nginx, not in app threads.
    spec["containers"].append(proxy.proxy_container(web, container_security_context(), proxy_image))
    spec["volumes"] += [*proxy.proxy_volumes(), dict(METRICS_VOLUME)]
    template = pod_template(WEB, spec)
    template["metadata"]["annotations"] = {
        "django-eks/proxy-config": proxy.config_checksum(web),
        **scrape_annotations(PROBE_PORT),
    }
    if target_group_binding != WEB:
        # A new binding (a replaced target group) rolls the pods: only pods created after it
        # carry its readiness gate, so the rollout ends once they are healthy in the new group.
        template["metadata"]["annotations"]["django-eks/target-group-binding"] = target_group_binding
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(WEB, WEB),
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
        "metadata": metadata(WEB, WEB),
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
        "metadata": metadata(component, component),
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


def target_group_binding(target_group_arn: str, name: str = WEB) -> Manifest:
    """Registers the web Service's pod IPs in the target group the platform created.

    No `networking` section: the platform's security groups already let the ALB reach the
    pods on the HTTP port.
    """
    return {
        "apiVersion": "elbv2.k8s.aws/v1beta1",
        "kind": "TargetGroupBinding",
        "metadata": metadata(name, WEB),
        "spec": {
            "serviceRef": {"name": WEB, "port": SERVICE_PORT},
            "targetGroupARN": target_group_arn,
            "targetType": "ip",
        },
    }
