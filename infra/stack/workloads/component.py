"""The `Workloads` component: the app's Kubernetes objects.

The manifests come from the pure modules of this package (manifests.py lists them); this module
only registers them, in the order of `order.DEPENDENCIES` (which says why each comes after
what). The registration of the Secrets and of the scaling objects has its own module each:
app_secrets.py, scaling.py. The load balancer controller, KEDA and the Cluster Autoscaler are
installed by `stack.addons`; every object here comes after them and is destroyed before them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, cast

import pulumi
import pulumi_kubernetes as k8s

from stack.config.model import StackConfig
from stack.config.names import NAMESPACE, WEB
from stack.config.workers import worker_deployments
from stack.workloads import app_config, proxy, reconciler
from stack.workloads.app_secrets import auto_named, register_app_secret
from stack.workloads.beat import beat_statefulset
from stack.workloads.benchmark import benchmark_job
from stack.workloads.cron_jobs import cron_job, cron_job_name
from stack.workloads.migration import MIGRATION_DEADLINE_SECONDS, migration_job
from stack.workloads.network_policies import network_policies, policy_metadata, policy_names
from stack.workloads.order import Children
from stack.workloads.pods import Manifest, labels
from stack.workloads.scaling import register_queue_scaling, register_scaling
from stack.workloads.web import target_group_binding, web_deployment, web_hpa, web_service
from stack.workloads.worker import worker_deployment

TYPE = "django-eks:app:Workloads"

MIGRATION_TIMEOUT = f"{(MIGRATION_DEADLINE_SECONDS + 300) // 60}m"
"""Pulumi waits for the Job a little longer than the Job's own deadline, so the Job's failure
(with its reason) is what `pulumi up` reports, not a Pulumi timeout."""


@dataclass(frozen=True)
class WorkloadsArgs:
    config: StackConfig
    """The whole validated stack config."""
    provider: k8s.Provider
    """Kubernetes provider bound to the EKS cluster."""
    target_group_arn: pulumi.Input[str]
    """IP-target target group (HTTP 8000) the ALB forwards to; health check on /healthz."""
    alb_dns_name: pulumi.Input[str]
    app_url: pulumi.Input[str]
    """Where clients reach the app: http(s)://<loadBalancer.domainName>, else the ALB's name."""
    redis_url: pulumi.Input[str]
    """Secret: rediss://:TOKEN@host:6379/0?ssl_cert_reqs=required."""
    redis_auth_token: pulumi.Input[str]
    """Secret: the Redis AUTH token alone, for KEDA's queue-length scaler."""
    database_url: pulumi.Input[str]
    """Secret: postgres://app:PASS@host:5432/app?sslmode=require."""
    image: pulumi.Input[str]
    """Full image reference, repo:tag."""
    proxy_image: pulumi.Input[str]
    """The web pod's nginx, by digest through the stack's pull-through cache (proxy.proxy_image)."""
    s3_cidrs: pulumi.Input[Sequence[str]]
    """The CIDRs of the region's S3 prefix list: the only addresses the pods reach on 443."""
    target_group_binding_name: str = WEB
    """The binding's name: a new one for each new target group (`LoadBalancer.binding_name`)."""
    depends_on: Sequence[pulumi.Resource] = ()
    """Node groups, cluster add-ons and the autoscalers: every Kubernetes object waits for them
    (and is destroyed before them)."""
    load_balancer_controller: Sequence[pulumi.Resource] = ()
    """The controller's Helm release (`stack.addons`): the Service, the TargetGroupBinding and
    every pod come after it (its webhooks), and are destroyed before it (the binding's finalizer)."""
    extra_settings: pulumi.Input[Mapping[str, str]] | None = None
    """More non-secret environment for every app pod (the files bucket and its region)."""
    pod_identity: Sequence[pulumi.Resource] = ()
    """Pod Identity associations of the app's service accounts: pods created before theirs
    would start without AWS credentials, so every app pod waits for them."""


class Workloads(pulumi.ComponentResource):
    """Web and worker Deployments, migrations, autoscaling, and their wiring into the ALB."""

    namespace: pulumi.Output[str]
    app_url: pulumi.Output[str]
    web: k8s.apps.v1.Deployment
    """The web Deployment: done when its rollout is, every new pod a healthy ALB target."""

    def __init__(
        self, name: str, args: WorkloadsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(TYPE, name, None, opts)
        config = args.config
        children = Children(self, provider=args.provider, depends_on=args.depends_on)
        after, record = children.after, children.record

        # --- namespace, identities, configuration -----------------------------------------
        ns_manifest = app_config.namespace(config)
        ns = k8s.core.v1.Namespace(
            f"{name}-namespace", metadata=ns_manifest["metadata"], opts=after("namespace")
        )
        record("namespace", ns)

        specs: pulumi.Output[dict[str, Any]] = pulumi.Output.from_input(args.s3_cidrs).apply(
            lambda cidrs: {
                p["metadata"]["name"]: p["spec"] for p in network_policies(config, s3_cidrs=list(cidrs or []))
            }
        )

        def spec_of(policy: str) -> Any:
            return specs.apply(lambda by_name: by_name[policy])

        record(
            "network-policies",
            *(
                k8s.networking.v1.NetworkPolicy(
                    f"{name}-{policy}",
                    metadata=cast(Any, policy_metadata(policy)),
                    spec=spec_of(policy),
                    opts=after("network-policies"),
                )
                for policy in policy_names(config)
            ),
        )

        record(
            "service-accounts",
            *(
                k8s.core.v1.ServiceAccount(
                    f"{name}-{component}",
                    metadata=sa["metadata"],
                    automount_service_account_token=sa["automountServiceAccountToken"],
                    opts=after("service-accounts"),
                )
                for component in app_config.components(config)
                for sa in [app_config.service_account(component)]
            ),
        )

        # Auto-named (no metadata.name): Pulumi replaces a ConfigMap or Secret whose data
        # changes under a new name, so the Deployments referring to it roll out. Under a fixed
        # name, running pods would keep the old environment until they happened to restart.
        config_data: pulumi.Output[Any] = pulumi.Output.all(
            args.alb_dns_name, args.app_url, args.extra_settings or {}
        ).apply(lambda v: {**app_config.app_settings(config, alb_dns_name=str(v[0]), app_url=str(v[1])), **v[2]})
        config_map = k8s.core.v1.ConfigMap(
            f"{name}-config",
            metadata=auto_named(app_config.config_map(config, alb_dns_name="", app_url="")["metadata"]),
            data=config_data,
            opts=after("config"),
        )
        record("config", config_map)
        # The web pod's nginx configuration; under a fixed name, as the web pod template carries
        # its checksum (a change rolls the pods, which read it at start).
        proxy_config = proxy.proxy_config_map(config.web, namespace=NAMESPACE, labels=labels(proxy.PROXY))
        record(
            "config",
            k8s.core.v1.ConfigMap(
                f"{name}-proxy-config", metadata=proxy_config["metadata"], data=proxy_config["data"],
                opts=after("config"),
            ),
        )

        secret = register_app_secret(
            name,
            children,
            database_url=args.database_url,
            redis_url=args.redis_url,
            app_secrets=app_config.app_secret_values(config.app),
        )
        record("app-pod-identity", *args.pod_identity)

        # --- the load balancer controller (installed by stack.addons) -----------------------
        record("controller", *args.load_balancer_controller)

        # --- migrations -------------------------------------------------------------------
        names = pulumi.Output.all(args.image, config_map.metadata.name, secret.metadata.name)

        def render(build: Callable[..., Manifest]) -> pulumi.Output[Any]:
            return names.apply(
                lambda v: build(config, str(v[0]), config_map_name=str(v[1]), secret_name=str(v[2]))
            )

        job = render(migration_job)
        migration = k8s.batch.v1.Job(
            f"{name}-migrate",
            metadata=job.apply(lambda j: j["metadata"]),
            spec=job.apply(lambda j: j["spec"]),
            opts=pulumi.ResourceOptions.merge(
                after(
                    "migration",
                    custom_timeouts=pulumi.CustomTimeouts(create=MIGRATION_TIMEOUT, update=MIGRATION_TIMEOUT),
                ),
                # A failed Job is re-run under the same name (replaceUnready): the old one has
                # to go first.
                pulumi.ResourceOptions(delete_before_replace=True),
            ),
        )
        record("migration", migration)

        # --- web ----------------------------------------------------------------------------
        service_manifest = web_service()
        service = k8s.core.v1.Service(
            f"{name}-web",
            metadata=service_manifest["metadata"],
            spec=service_manifest["spec"],
            opts=after("service"),
        )
        record("service", service)

        binding_name = args.target_group_binding_name
        binding_spec: pulumi.Output[Any] = pulumi.Output.from_input(args.target_group_arn).apply(
            lambda arn: target_group_binding(arn, binding_name)["spec"]
        )
        binding_manifest = target_group_binding("", binding_name)
        binding = k8s.apiextensions.CustomResource(
            f"{name}-web-target-group-binding",
            api_version=binding_manifest["apiVersion"],
            kind=binding_manifest["kind"],
            metadata=binding_manifest["metadata"],
            spec=binding_spec,
            # spec.targetGroupARN is immutable (the controller's validating webhook refuses a
            # change): a replaced target group replaces the binding. The new one has another
            # name (stack.platform.load_balancer.target_group_binding_name) and is created first; the old
            # one keeps the old group's targets until Pulumi deletes it, after the listeners
            # have switched (create-before-delete).
            opts=pulumi.ResourceOptions.merge(
                after("target-group-binding"),
                pulumi.ResourceOptions(replace_on_changes=["spec.targetGroupARN"]),
            ),
        )
        record("target-group-binding", binding)

        web_manifest = web_deployment(config, "", proxy_image="")
        web_spec = pulumi.Output.all(names, args.proxy_image).apply(
            lambda v: web_deployment(
                config, str(v[0][0]), proxy_image=str(v[1]), config_map_name=str(v[0][1]),
                secret_name=str(v[0][2]), target_group_binding=binding_name,
            )["spec"]
        )
        web = k8s.apps.v1.Deployment(
            f"{name}-web",
            metadata=web_manifest["metadata"],
            spec=web_spec,
            opts=after("web"),
        )
        record("web", web)
        self.web = web
        register_scaling(name, "web", web_hpa(config), children)

        # --- workers: one Deployment per worker Deployment of the config --------------------
        for deployment in worker_deployments(config):
            worker_manifest = worker_deployment(config, "", name=deployment.name)
            worker = k8s.apps.v1.Deployment(
                f"{name}-{deployment.name}",
                metadata=worker_manifest["metadata"],
                spec=render(partial(worker_deployment, name=deployment.name)).apply(lambda d: d["spec"]),
                opts=after("worker"),
            )
            record("worker", worker)
        register_queue_scaling(
            name, config, children, redis_url=args.redis_url, redis_auth_token=args.redis_auth_token
        )

        # --- beat and the cron jobs (`beat`, `cronJobs`) ------------------------------------
        if config.beat is not None:
            beat_manifest = beat_statefulset(config, "")
            record(
                "beat",
                k8s.apps.v1.StatefulSet(
                    f"{name}-beat",
                    metadata=beat_manifest["metadata"],
                    spec=render(beat_statefulset).apply(lambda d: d["spec"]),
                    opts=after("beat"),
                ),
            )
        for key in config.cron_jobs:
            job_manifest = cron_job(config, "", key=key)
            record(
                "cron-jobs",
                k8s.batch.v1.CronJob(
                    f"{name}-{cron_job_name(key)}",
                    metadata=job_manifest["metadata"],
                    spec=render(partial(cron_job, key=key)).apply(lambda d: d["spec"]),
                    opts=after("cron-jobs"),
                ),
            )

        # --- the demo's own: benchmark (benchmark.nodePool) and reconciler -------------------
        if config.app is not None:
            self._finish(ns, args)
            return
        if config.benchmark.node_pool is not None:
            bench_job = names.apply(
                lambda v: benchmark_job(config, str(v[0]), config_map_name=str(v[1]), secret_name=str(v[2]))
            )
            record(
                "benchmark",
                k8s.batch.v1.Job(
                    f"{name}-benchmark",
                    metadata=bench_job.apply(lambda j: j["metadata"]),
                    spec=bench_job.apply(lambda j: j["spec"]),
                    opts=after("benchmark"),
                ),
            )

        # --- reconciler ---------------------------------------------------------------------
        cron_manifest = reconciler.reconciler_cronjob(config, "")
        cron = k8s.batch.v1.CronJob(
            f"{name}-reconciler",
            metadata=cron_manifest["metadata"],
            spec=render(reconciler.reconciler_cronjob).apply(lambda d: d["spec"]),
            opts=after("reconciler"),
        )
        record("reconciler", cron)
        self._finish(ns, args)

    def _finish(self, ns: k8s.core.v1.Namespace, args: WorkloadsArgs) -> None:
        self.namespace = ns.metadata.apply(lambda meta: meta.name or NAMESPACE)
        self.app_url = pulumi.Output.from_input(args.app_url)
        self.register_outputs({"namespace": self.namespace, "app_url": self.app_url})
