"""Every Kubernetes object of the app namespace, in creation order: this module only orders them.

The objects themselves are built where a newcomer looks for them: pods.py (what every pod
shares), app_config.py (namespace, service accounts, ConfigMap, Secret), web.py, worker.py,
migration.py, reconciler.py, beat.py, cron_jobs.py, benchmark.py, proxy.py, queue_scaling.py
and network_policies.py.
All of them are pure functions of the stack config: no Pulumi engine, no cluster. The
`Workloads` component (component.py) turns the same dicts into `pulumi_kubernetes` resources,
the offline plan writes them as YAML, and the tests validate them against the Kubernetes
OpenAPI schema.

Objects that refer to each other (the Deployments to the ConfigMap and Secret, the
TargetGroupBinding to the Service) take the names as arguments, because in the cluster the
ConfigMap and Secret are auto-named by Pulumi (see `Workloads`).
"""

from __future__ import annotations

from collections.abc import Mapping

from stack.config.model import StackConfig
from stack.config.names import NAMESPACE, WEB, WORKER
from stack.config.workers import worker_deployments
from stack.workloads import proxy, queue_scaling
from stack.workloads.app_config import (
    PLACEHOLDER_SECRETS,
    app_secret_values,
    components,
    config_map,
    namespace,
    secret,
    secret_names,
    service_account,
)
from stack.workloads.migration import migration_job
from stack.workloads.network_policies import network_policies
from stack.workloads.pods import Manifest, labels, pod_disruption_budget
from stack.workloads.reconciler import reconciler_cronjob
from stack.workloads.web import target_group_binding, web_deployment, web_hpa, web_service
from stack.workloads.beat import beat_statefulset
from stack.workloads.cron_jobs import cron_jobs
from stack.workloads.worker import worker_deployment, worker_selector


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
    """Every object the app namespace holds, in creation order: the demo's reconciler CronJob
    only where the demo is the app."""
    return [
        namespace(config),
        *(service_account(c) for c in components(config)),
        config_map(config, alb_dns_name=alb_dns_name, app_url=app_url),
        secret({**secret_values, **app_secret_values(config.app)}, secret_names(config)),
        migration_job(config, image),
        web_service(),
        target_group_binding(target_group_arn),
        proxy.proxy_config_map(config.web, namespace=NAMESPACE, labels=labels(proxy.PROXY)),
        web_deployment(config, image, proxy_image=proxy_image),
        web_hpa(config),
        pod_disruption_budget(WEB),
        *(
            manifest
            for d in worker_deployments(config)
            for manifest in (
                worker_deployment(config, image, name=d.name),
                pod_disruption_budget(WORKER, name=d.name, match_labels=worker_selector(d)),
            )
        ),
        *([reconciler_cronjob(config, image)] if config.app is None else []),
        *([beat_statefulset(config, image)] if config.beat is not None else []),
        *cron_jobs(config, image),
    ]


def rendered_manifests(
    config: StackConfig,
    *,
    image: str,
    proxy_image: str,
    alb_dns_name: str,
    app_url: str,
    target_group_arn: str,
    s3_cidrs: list[str],
) -> list[Manifest]:
    """Every Kubernetes object `Workloads` creates in the app namespace, as plain dicts.

    The Secrets hold placeholders, and the ConfigMap and Secret carry the base of the names
    Pulumi generates for them. The controller's and KEDA's own objects come from their Helm
    charts and are not listed. The ScaledObject watches the broker the app's REDIS_URL names.
    """
    location = queue_scaling.broker_location(PLACEHOLDER_SECRETS["REDIS_URL"])
    namespace_manifest, *rest = app_manifests(
        config,
        image=image,
        proxy_image=proxy_image,
        alb_dns_name=alb_dns_name,
        app_url=app_url,
        target_group_arn=target_group_arn,
    )
    return [
        namespace_manifest,
        *network_policies(config, s3_cidrs=s3_cidrs),
        *rest,
        queue_scaling.auth_secret(queue_scaling.PLACEHOLDER_TOKEN),
        queue_scaling.trigger_authentication(),
        *(queue_scaling.scaled_object(config, location, d.name) for d in worker_deployments(config)),
    ]
