"""The app's namespace, its service accounts, and the environment every app container shares:
the ConfigMap (settings, allowed hosts, CSRF origins) and the Secret (credentials)."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from stack.config.model import AppConfig, EncryptedValue, StackConfig
from stack.config.names import BEAT, MIGRATE, NAMESPACE, WEB, WORKER
from stack.config.workers import longest_task_seconds, single_worker_queue, visibility_timeout_seconds
from stack.config.memory import memory_settings
from stack.workloads import proxy
from stack.workloads.pods import CONFIG_MAP, PART_OF, SECRET, Manifest, metadata
from stack.workloads.reconciler import RECONCILER, reconciler_settings

SETTINGS_MODULE = "config.settings.production"
HEARTBEAT_FILE = "/tmp/celery-worker-heartbeat"
LOG_LEVEL = "INFO"

def components(config: StackConfig) -> tuple[str, ...]:
    """The app's pod kinds, each with its own service account: the demo's job reconciler only
    where the demo is the app."""
    demo = (RECONCILER,) if config.app is None else ()
    return (WEB, WORKER, MIGRATE, *demo, *((BEAT,) if config.beat is not None else ()))


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
        "metadata": metadata(component, component),
        "automountServiceAccountToken": False,
    }


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
    """The non-secret environment of every app container (the ConfigMap's data): the platform's
    (docs/app-contract.md), then the demo's own settings or the app's `env`."""
    https = config.load_balancer.certificate_arn is not None
    platform = {
        "DJANGO_SETTINGS_MODULE": SETTINGS_MODULE if config.app is None else config.app.settings_module,
        "DJANGO_DEBUG": "false",
        "DJANGO_ALLOWED_HOSTS": ",".join(allowed_hosts(alb_dns_name, app_url)),
        "DJANGO_CSRF_TRUSTED_ORIGINS": ",".join(csrf_trusted_origins(app_url)),
        "DJANGO_LOG_LEVEL": LOG_LEVEL,
        # Without a certificate the ALB only speaks HTTP: redirecting to HTTPS would loop.
        "DJANGO_SECURE_SSL_REDIRECT": "true" if https else "false",
        # With several worker Deployments each sets its own limit in its pods' env; the
        # ConfigMap's (the other pods') is the longest.
        "CELERY_TASK_TIME_LIMIT": str(longest_task_seconds(config)),
        "CELERY_VISIBILITY_TIMEOUT": str(visibility_timeout_seconds(config)),
        "CELERY_QUEUE": single_worker_queue(config),
        "CELERY_HEARTBEAT_FILE": HEARTBEAT_FILE,
        "PYTHONUNBUFFERED": "1",
    }
    if config.app is not None:
        return {**platform, **config.app.env}
    return {
        **platform,
        # The web pod's proxy sizes its body limit from the same number.
        "JOBS_MAX_UPLOAD_BYTES": str(proxy.MAX_UPLOAD_BYTES),
        "API_IO_ENABLED": "true" if config.web.load_test_endpoint else "false",
        **reconciler_settings(config),
        **memory_settings(config),
    }


SECRET_KEYS = ("DJANGO_SECRET_KEY", "DATABASE_URL", "REDIS_URL")
"""The platform's secrets; an app's own (app.secrets) follow them in the same Secret."""


def secret_names(config: StackConfig) -> tuple[str, ...]:
    """Every key of the app's Secret."""
    return SECRET_KEYS + tuple(sorted(config.app.secrets) if config.app is not None else ())


def config_map(config: StackConfig, *, alb_dns_name: str, app_url: str) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(CONFIG_MAP, "config"),
        "data": app_settings(config, alb_dns_name=alb_dns_name, app_url=app_url),
    }


def secret(values: Mapping[str, str], names: tuple[str, ...] = SECRET_KEYS) -> Manifest:
    """The Secret with `values` of `names` as stringData; in the cluster the values are secret Outputs."""
    missing = set(names) - set(values)
    if missing:
        raise ValueError(f"secret values missing: {', '.join(sorted(missing))}")
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata(SECRET, "config"),
        "type": "Opaque",
        "stringData": {key: values[key] for key in names},
    }



PLACEHOLDER_SECRETS = {
    "DJANGO_SECRET_KEY": "placeholder-django-secret-key",
    "DATABASE_URL": "postgres://app:placeholder-database-password@database:5432/app?sslmode=require",
    "REDIS_URL": "rediss://:placeholder-redis-token@redis:6379/0?ssl_cert_reqs=required",
}
"""Stand-ins for the Secret's values in offline renderings; never real credentials."""

ENCRYPTED_PLACEHOLDER = "placeholder-encrypted-in-the-stack-file"
"""What an offline rendering shows of an app secret: its ciphertext is not decrypted offline."""


def app_secret_values(app: AppConfig | None) -> dict[str, str]:
    """The app's own secrets (app.secrets) as the Secret holds them; a value still encrypted
    (read offline, without the engine) as ENCRYPTED_PLACEHOLDER."""
    if app is None:
        return {}
    return {
        name: ENCRYPTED_PLACEHOLDER if isinstance(value, EncryptedValue) else value.get_secret_value()
        for name, value in app.secrets.items()
    }
