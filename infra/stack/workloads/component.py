"""The `Workloads` component: the app's Kubernetes objects.

The manifests come from `manifests.py`; this module only registers them, in an order that is
safe both ways:

    create:   namespace, accounts, config, Secret -> (the load balancer controller)
              -> migration Job -> Service, TargetGroupBinding -> Deployments -> web HPA,
              queue auth Secret -> TriggerAuthentication -> worker ScaledObject
    destroy:  the reverse, so the TargetGroupBinding (whose finalizer the controller removes
              after deregistering the targets) is deleted while the controller still runs.
              The controller, KEDA and the Cluster Autoscaler are outside (`stack.addons`):
              every object here comes after them, through `depends_on`, and is destroyed
              before them.

`DEPENDENCIES` spells the order out; `Workloads` builds every child's `depends_on` from it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from stack.config.model import StackConfig
from stack.workloads import benchmark as bench
from stack.workloads import manifests as m
from stack.workloads import proxy
from stack.workloads import queue_scaling as qs
from stack.workloads import reconciler
from stack.workloads.network_policies import network_policies, policy_metadata, policy_names

TYPE = "django-eks:app:Workloads"

MIGRATION_TIMEOUT = f"{(m.MIGRATION_DEADLINE_SECONDS + 300) // 60}m"
"""Pulumi waits for the Job a little longer than the Job's own deadline, so the Job's failure
(with its reason) is what `pulumi up` reports, not a Pulumi timeout."""

DEPENDENCIES: Mapping[str, tuple[str, ...]] = {
    "namespace": (),
    # Before any pod, so no pod ever runs unconfined.
    "network-policies": ("namespace",),
    "service-accounts": ("namespace",),
    "config": ("namespace",),
    "secret": ("namespace",),
    # The controller's Helm release (stack.addons.component), awaited with its Pod Identity.
    "controller": (),
    # The controller's webhook mutates pods in the labelled namespace; pods created while it
    # is not running would miss their readiness gate (or be rejected).
    # Its pod writes files into the bucket (jobs/migrations/0003) with the migrate role, which
    # Pod Identity injects at pod creation.
    "migration": ("service-accounts", "config", "secret", "controller", "network-policies", "app-pod-identity"),
    "app-pod-identity": (),
    # After the controller: its Helm release is awaited until the controller Deployment is
    # ready, and its readiness check includes the webhook server having started, so the
    # webhooks answer before anything they admit is created.
    "service": ("namespace", "controller"),
    # Explicit, so destroy deletes the binding before the controller that removes its
    # finalizer; and the CRD only exists once the chart is installed.
    "target-group-binding": ("service", "controller"),
    # The binding must exist when web pods are created, or they get no readiness gate.
    "web": ("migration", "target-group-binding", "controller", "network-policies", "app-pod-identity"),
    "web-autoscaling": ("web",),
    "web-disruption-budget": ("namespace",),
    "worker": ("migration", "controller", "network-policies", "app-pod-identity"),
    "queue-auth-secret": ("namespace",),
    "queue-trigger-authentication": ("queue-auth-secret",),
    # The ScaledObject is deleted first on destroy: KEDA then removes the HPA it made.
    "worker-autoscaling": ("worker", "queue-trigger-authentication"),
    "worker-disruption-budget": ("namespace",),
    # The benchmark submits jobs through the app's tables: after the migrations.
    "benchmark": ("migration",),
    # Its pods run the image's code against the migrated schema; the expiry of the files
    # bucket runs in them with the reconciler's own Pod Identity role.
    "reconciler": ("migration", "network-policies", "app-pod-identity"),
}
"""For each role, the roles it must come after (and be destroyed before)."""


def dependency_closure(role: str) -> set[str]:
    """Every role `role` comes after, directly or not."""
    seen: set[str] = set()
    pending = list(DEPENDENCIES[role])
    while pending:
        other = pending.pop()
        if other not in seen:
            seen.add(other)
            pending.extend(DEPENDENCIES.get(other, ()))
    return seen


@dataclass(frozen=True)
class WorkloadsArgs:
    config: StackConfig
    """The whole validated stack config."""
    provider: k8s.Provider
    """Kubernetes provider bound to the EKS cluster."""
    cluster_name: pulumi.Input[str]
    vpc_id: pulumi.Input[str]
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
    target_group_binding_name: str = m.WEB
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


def child_options(
    parent: pulumi.Resource,
    *,
    provider: pulumi.ProviderResource | None,
    depends_on: Sequence[pulumi.Resource],
    custom_timeouts: pulumi.CustomTimeouts | None = None,
) -> pulumi.ResourceOptions:
    """Options of every child: under the component, on the cluster's provider when given."""
    return pulumi.ResourceOptions(
        parent=parent,
        provider=provider,
        depends_on=list(depends_on),
        custom_timeouts=custom_timeouts,
    )


def secret_values(
    *, secret_key: pulumi.Input[str], database_url: pulumi.Input[str], redis_url: pulumi.Input[str]
) -> pulumi.Output[dict[str, str]]:
    """The Secret's stringData, always a secret Output, even if an input arrived in plain text."""
    values = pulumi.Output.all(secret_key, database_url, redis_url).apply(
        lambda v: dict(zip(m.SECRET_KEYS, (str(x) for x in v), strict=True))
    )
    return pulumi.Output.secret(values)


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
        created: dict[str, list[pulumi.Resource]] = {}

        def after(role: str, **extra: Any) -> pulumi.ResourceOptions:
            deps = [*args.depends_on]
            for other in DEPENDENCIES[role]:
                deps.extend(created[other])
            return child_options(self, provider=args.provider, depends_on=deps, **extra)

        def record(role: str, *resources: pulumi.Resource) -> None:
            created.setdefault(role, []).extend(resources)

        # --- namespace, identities, configuration -----------------------------------------
        ns_manifest = m.namespace(config)
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
                for policy in policy_names()
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
                for component in (m.WEB, m.WORKER, m.MIGRATE, reconciler.RECONCILER)
                for sa in [m.service_account(component)]
            ),
        )

        # Auto-named (no metadata.name): Pulumi replaces a ConfigMap or Secret whose data
        # changes under a new name, so the Deployments referring to it roll out. Under a fixed
        # name, running pods would keep the old environment until they happened to restart.
        config_data: pulumi.Output[Any] = pulumi.Output.all(
            args.alb_dns_name, args.app_url, args.extra_settings or {}
        ).apply(lambda v: {**m.app_settings(config, alb_dns_name=str(v[0]), app_url=str(v[1])), **v[2]})
        config_map = k8s.core.v1.ConfigMap(
            f"{name}-config",
            metadata=_auto_named(m.config_map(config, alb_dns_name="", app_url="")["metadata"]),
            data=config_data,
            opts=after("config"),
        )
        record("config", config_map)
        # The web pod's nginx configuration; under a fixed name, as the web pod template carries
        # its checksum (a change rolls the pods, which read it at start).
        proxy_config = proxy.proxy_config_map(config.web, namespace=m.NAMESPACE, labels=m.labels(proxy.PROXY))
        record(
            "config",
            k8s.core.v1.ConfigMap(
                f"{name}-proxy-config", metadata=proxy_config["metadata"], data=proxy_config["data"],
                opts=after("config"),
            ),
        )

        secret_key = random.RandomPassword(
            f"{name}-django-secret-key",
            length=64,
            special=False,
            opts=pulumi.ResourceOptions(parent=self),
        )
        placeholder_secret = m.secret(m.PLACEHOLDER_SECRETS)
        secret = k8s.core.v1.Secret(
            f"{name}-secrets",
            metadata=_auto_named(placeholder_secret["metadata"]),
            type=placeholder_secret["type"],
            string_data=cast(
                Any,
                secret_values(
                    secret_key=secret_key.result,
                    database_url=args.database_url,
                    redis_url=args.redis_url,
                ),
            ),
            # The SDK already marks data and stringData secret; repeated so a future change
            # of SDK defaults cannot leak them into the state in plain text.
            opts=pulumi.ResourceOptions.merge(
                after("secret"),
                pulumi.ResourceOptions(additional_secret_outputs=["data", "stringData"]),
            ),
        )
        record("secret", secret)
        record("app-pod-identity", *args.pod_identity)

        # --- the load balancer controller (installed by stack.addons) -----------------------
        record("controller", *args.load_balancer_controller)

        # --- migrations -------------------------------------------------------------------
        names = pulumi.Output.all(args.image, config_map.metadata.name, secret.metadata.name)

        def render(build: Callable[..., m.Manifest]) -> pulumi.Output[Any]:
            return names.apply(
                lambda v: build(config, str(v[0]), config_map_name=str(v[1]), secret_name=str(v[2]))
            )

        job = render(m.migration_job)
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
        service_manifest = m.web_service()
        service = k8s.core.v1.Service(
            f"{name}-web",
            metadata=service_manifest["metadata"],
            spec=service_manifest["spec"],
            opts=after("service"),
        )
        record("service", service)

        binding_name = args.target_group_binding_name
        binding_spec: pulumi.Output[Any] = pulumi.Output.from_input(args.target_group_arn).apply(
            lambda arn: m.target_group_binding(arn, binding_name)["spec"]
        )
        binding_manifest = m.target_group_binding("", binding_name)
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

        web_manifest = m.web_deployment(config, "", proxy_image="")
        web_spec = pulumi.Output.all(names, args.proxy_image).apply(
            lambda v: m.web_deployment(
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
        self._register_scaling(name, "web", m.web_hpa(config), after)

        # --- worker -------------------------------------------------------------------------
        worker_manifest = m.worker_deployment(config, "")
        worker = k8s.apps.v1.Deployment(
            f"{name}-worker",
            metadata=worker_manifest["metadata"],
            spec=render(m.worker_deployment).apply(lambda d: d["spec"]),
            opts=after("worker"),
        )
        record("worker", worker)
        self._register_queue_scaling(name, args, after, record)

        # --- benchmark (benchmark.nodePool) -------------------------------------------------
        if config.benchmark.node_pool is not None:
            bench_job = names.apply(
                lambda v: bench.benchmark_job(config, str(v[0]), config_map_name=str(v[1]), secret_name=str(v[2]))
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

        self.namespace = ns.metadata.apply(lambda meta: meta.name or m.NAMESPACE)
        self.app_url = pulumi.Output.from_input(args.app_url)
        self.register_outputs({"namespace": self.namespace, "app_url": self.app_url})

    def _register_queue_scaling(
        self,
        name: str,
        args: WorkloadsArgs,
        after: Callable[[str], pulumi.ResourceOptions],
        record: Callable[..., None],
    ) -> None:
        """The worker's ScaledObject, the TriggerAuthentication and the Secret it reads, and
        the worker's PodDisruptionBudget."""
        placeholder = qs.auth_secret(qs.PLACEHOLDER_TOKEN)
        auth_secret = k8s.core.v1.Secret(
            f"{name}-queue-auth",
            metadata=placeholder["metadata"],
            type=placeholder["type"],
            string_data=cast(
                Any,
                pulumi.Output.secret(
                    pulumi.Output.from_input(args.redis_auth_token).apply(
                        lambda token: {qs.AUTH_SECRET_KEY: str(token)}
                    )
                ),
            ),
            opts=pulumi.ResourceOptions.merge(
                after("queue-auth-secret"),
                pulumi.ResourceOptions(additional_secret_outputs=["data", "stringData"]),
            ),
        )
        record("queue-auth-secret", auth_secret)

        auth = qs.trigger_authentication()
        trigger_auth = k8s.apiextensions.CustomResource(
            f"{name}-queue-trigger-auth",
            api_version=auth["apiVersion"],
            kind=auth["kind"],
            metadata=auth["metadata"],
            spec=auth["spec"],
            opts=after("queue-trigger-authentication"),
        )
        record("queue-trigger-authentication", trigger_auth)

        # The host, port, database and TLS of the URL the workers use, so the scaler watches
        # exactly their broker; the token is not part of them, so they need not stay secret.
        location = pulumi.Output.unsecret(
            pulumi.Output.from_input(args.redis_url).apply(lambda url: qs.broker_location(str(url)))
        )
        placeholder_object = qs.scaled_object(args.config, qs.broker_location(m.PLACEHOLDER_SECRETS["REDIS_URL"]))
        k8s.apiextensions.CustomResource(
            f"{name}-worker",
            api_version=placeholder_object["apiVersion"],
            kind=placeholder_object["kind"],
            metadata=placeholder_object["metadata"],
            spec=location.apply(lambda where: qs.scaled_object(args.config, where)["spec"]),
            opts=after("worker-autoscaling"),
        )
        self._register_disruption_budget(name, "worker", after)

    def _register_scaling(
        self,
        name: str,
        role: str,
        hpa: m.Manifest,
        after: Callable[[str], pulumi.ResourceOptions],
    ) -> None:
        """The HPA and the PodDisruptionBudget of one Deployment."""
        k8s.autoscaling.v2.HorizontalPodAutoscaler(
            f"{name}-{role}",
            metadata=hpa["metadata"],
            spec=hpa["spec"],
            opts=after(f"{role}-autoscaling"),
        )
        self._register_disruption_budget(name, role, after)

    def _register_disruption_budget(
        self, name: str, role: str, after: Callable[[str], pulumi.ResourceOptions]
    ) -> None:
        pdb = m.pod_disruption_budget(role)
        k8s.policy.v1.PodDisruptionBudget(
            f"{name}-{role}",
            metadata=pdb["metadata"],
            spec=pdb["spec"],
            opts=after(f"{role}-disruption-budget"),
        )


def _auto_named(metadata: dict[str, Any]) -> Any:
    """`metadata` without its name, so Pulumi generates one from the resource name."""
    return {key: value for key, value in metadata.items() if key != "name"}
