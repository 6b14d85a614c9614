"""The rules that tie sections of the stack config together, and validation as a whole.

`parse_stack_config` validates each section (stack.config.model) and then these rules, and
reports every problem under its key path (StackConfigError).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from pydantic.alias_generators import to_camel

from stack.config.memory import memory_problems
from stack.config.names import METRICS_ENV
from stack.config.model import DEMO_SETTINGS, LoadBalancerConfig, StackConfig, demo_settings_set
from stack.config.workers import worker_deployments, worker_map_problems

@dataclass(frozen=True)
class ConfigProblem:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class StackConfigError(ValueError):
    """The stack config is invalid; `problems` lists each key path and rule."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid stack config ({len(problems)} problem(s)):\n{lines}")


KEEP_ALIVE_OPTION: dict[str, str] = {
    "gunicorn": "--keep-alive",
    "uwsgi": "--http-keepalive",
    "granian": "--http1-header-read-timeout",
}
GRANIAN_KEEP_ALIVE_MAX_SECONDS = 60
"""granian closes an idle connection at `--http1-header-read-timeout`, which takes at most
60000 ms (`granian --help`; runtime/django_eks_runtime/launch.py refuses more)."""


def web_server_problems(config: StackConfig) -> list[ConfigProblem]:
    """Each server's keep-alive and shutdown rules against the ALB."""
    web, idle = config.web, config.load_balancer.idle_timeout_seconds
    problems: list[ConfigProblem] = []
    if web.keep_alive_seconds <= idle:
        problems.append(
            ConfigProblem(
                "web.keepAliveSeconds",
                f"{web.keep_alive_seconds} must be above loadBalancer.idleTimeoutSeconds {idle}, or "
                f"the ALB reuses connections {web.server} ({KEEP_ALIVE_OPTION[web.server]}) has "
                "closed and clients get 502s",
            )
        )
    if web.server == "granian" and web.keep_alive_seconds > GRANIAN_KEEP_ALIVE_MAX_SECONDS:
        problems.append(
            ConfigProblem(
                "web.keepAliveSeconds",
                f"{web.keep_alive_seconds} is above the {GRANIAN_KEEP_ALIVE_MAX_SECONDS} s granian can keep an "
                "idle connection (--http1-header-read-timeout); with web.server granian set it to at most "
                f"{GRANIAN_KEEP_ALIVE_MAX_SECONDS} and loadBalancer.idleTimeoutSeconds below it",
            )
        )
    if web.server == "uwsgi" and web.timeout_seconds < idle:
        # harakiri kills the request outright; below the ALB's own wait it would turn slow but
        # healthy requests into 502s the ALB would otherwise have waited for.
        problems.append(
            ConfigProblem(
                "web.timeoutSeconds",
                f"{web.timeout_seconds} is uWSGI's --harakiri and must be at least "
                f"loadBalancer.idleTimeoutSeconds {idle}, or requests the ALB still waits for are "
                "killed (502)",
            )
        )
    return problems


def load_balancer_problems(config: LoadBalancerConfig) -> list[ConfigProblem]:
    """The keys of loadBalancer that only make sense together."""
    problems: list[ConfigProblem] = []
    if config.certificate_arn is not None and config.domain_name is None:
        # Not derived from the certificate: one certificate may name several domains and
        # wildcards, and only the stack knows which one clients use.
        problems.append(
            ConfigProblem(
                "loadBalancer.domainName",
                "is required with loadBalancer.certificateArn: the certificate names the app's "
                "domain, not the ALB's own name, so clients must come through the domain, and "
                "Django must allow it as host and CSRF origin",
            )
        )
    if config.hosted_zone_id is not None and config.domain_name is None:
        problems.append(
            ConfigProblem(
                "loadBalancer.hostedZoneId",
                "needs loadBalancer.domainName: the alias record it creates is the domain's",
            )
        )
    return problems


def cross_section_problems(config: StackConfig, *, secrets_decrypted: bool = False) -> list[ConfigProblem]:
    """The rules no single section can check alone."""
    problems: list[ConfigProblem] = []
    pools = config.node_pools
    placed = [
        ("web", config.web.node_pool),
        *((d.key, d.spec.node_pool) for d in worker_deployments(config)),
        ("beat", config.beat.node_pool if config.beat else None),
        *((f"cronJobs.{key}", job.node_pool) for key, job in config.cron_jobs.items()),
    ]
    for section, node_pool in placed:
        if node_pool is not None and node_pool not in pools:
            problems.append(
                ConfigProblem(
                    f"{section}.nodePool",
                    f"names node pool {node_pool!r}, which is not configured; "
                    f"nodePools has: {', '.join(pools)}",
                )
            )
    bench_pool = config.benchmark.node_pool
    if bench_pool is not None and bench_pool not in pools:
        problems.append(
            ConfigProblem(
                "benchmark.nodePool",
                f"names node pool {bench_pool!r}, which is not configured; nodePools has: {', '.join(pools)}",
            )
        )
    problems += web_server_problems(config)
    for section, replicas, scaling in (
        ("web", config.web.replicas, config.web.autoscaling),
        *((d.key, d.spec.replicas, d.spec.autoscaling) for d in worker_deployments(config)),
    ):
        if not scaling.min_replicas <= replicas <= scaling.max_replicas:
            problems.append(
                ConfigProblem(
                    f"{section}.replicas",
                    f"{replicas} must lie within autoscaling.minReplicas {scaling.min_replicas} "
                    f"and autoscaling.maxReplicas {scaling.max_replicas}",
                )
            )
    certificate = config.load_balancer.certificate_arn
    if certificate is not None and certificate.split(":")[3] != config.region:
        problems.append(
            ConfigProblem(
                "loadBalancer.certificateArn",
                f"is in region {certificate.split(':')[3]}, but the stack is in {config.region}; "
                "a load balancer can only use ACM certificates of its own region",
            )
        )
    problems.extend(load_balancer_problems(config.load_balancer))
    if config.app is None:
        # The memory model is the demo's (its uploads and images); an app sizes its own pods.
        problems.extend(ConfigProblem(path, message) for path, message in memory_problems(config))
    problems.extend(ConfigProblem(path, message) for path, message in worker_map_problems(config))
    problems += app_problems(config, secrets_decrypted=secrets_decrypted)
    problems += threshold_problems(config)
    if not any(pool.schedules_system_pods for pool in pools.values()):
        problems.append(
            ConfigProblem(
                "nodePools",
                "every pool has a NoSchedule/NoExecute taint; at least one must accept "
                "system pods (CoreDNS, the load balancer controller, metrics-server)",
            )
        )
    return problems


def threshold_problems(config: StackConfig) -> list[ConfigProblem]:
    """A queue-wait threshold names a queue some worker Deployment consumes: the alert of a queue
    nobody serves would never see a sample."""
    waits = config.observability.thresholds.queue_wait_p95_seconds or {}
    served = [queue for d in worker_deployments(config) for queue in d.queues]
    return [
        ConfigProblem(
            f"observability.thresholds.queueWaitP95Seconds.{queue}",
            f"no worker Deployment consumes queue {queue!r}; the stack's queues: {', '.join(served)}",
        )
        for queue in waits
        if queue not in served
    ]


PLATFORM_ENV_NAMES = frozenset({
    "DATABASE_URL", "REDIS_URL", "PYTHONUNBUFFERED", "DJANGO_SETTINGS_MODULE", "DJANGO_SECRET_KEY",
    "DJANGO_DEBUG", "DJANGO_ALLOWED_HOSTS", "DJANGO_CSRF_TRUSTED_ORIGINS", "DJANGO_LOG_LEVEL",
    "DJANGO_SECURE_SSL_REDIRECT", *METRICS_ENV,
})
PLATFORM_ENV_PREFIXES = ("APP_", "WEB_", "WORKER_", "PROBE_", "CELERY_", "AWS_")
"""The environment the platform gives an app's pods (docs/app-contract.md): `app.env` and
`app.secrets` may not set these names, nor any under these prefixes (AWS_: the bucket's, and
those the Pod Identity agent injects)."""


def platform_env_name(name: str) -> bool:
    return name in PLATFORM_ENV_NAMES or name.startswith(PLATFORM_ENV_PREFIXES)


def app_problems(config: StackConfig, *, secrets_decrypted: bool) -> list[ConfigProblem]:
    """With an `app` section: no demo-only key, no variable of the platform's own, and no secret
    in plain text (a value not `secure:` in the stack file: the engine did not decrypt it)."""
    app = config.app
    if app is None:
        return []
    problems = [
        ConfigProblem(key, f"is one of the demo's settings ({DEMO_SETTINGS[key]}) and has no effect on your app; remove it")
        for key in demo_settings_set(config)
    ]
    for section, names in (("app.env", app.env), ("app.secrets", app.secrets)):
        problems += [
            ConfigProblem(
                f"{section}.{name}",
                "is set by the platform (docs/app-contract.md: the names it sets and the prefixes "
                f"{', '.join(PLATFORM_ENV_PREFIXES)} are its own); choose another name",
            )
            for name in names
            if platform_env_name(name)
        ]
    if not secrets_decrypted:
        problems += [
            ConfigProblem(
                f"app.secrets.{name}",
                f"is plain text in the stack file; store it encrypted: `pulumi config set --secret "
                f"--path app.secrets.{name} <value>` (only its ciphertext is written)",
            )
            for name in app.decrypted_secrets
        ]
    return problems


# --- reading Pulumi config ------------------------------------------------------------------

_SECTIONS = {
    to_camel(name): name for name in StackConfig.model_fields if name != "region"
}


def _problems_from(error: ValidationError) -> list[ConfigProblem]:
    problems = []
    for item in error.errors():
        # A bad mapping key is reported at the key itself, not at pydantic's "[key]" marker.
        parts = [str(part) for part in item["loc"] if part != "[key]"]
        path = ".".join(parts) or "(root)"
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        problems.append(ConfigProblem(path, message))
    return problems


def parse_stack_config(raw: Mapping[str, Any], *, secrets_decrypted: bool = False) -> StackConfig:
    """Validate a stack's config, given as {camelCase key: value} without the namespace.

    `secrets_decrypted`: the engine handed over `app` as a secret key, its `secure:` values
    decrypted (stack.config.loader); otherwise a plain string in `app.secrets` was plain text in
    the stack file, and is refused.
    """
    try:
        config = StackConfig.model_validate(dict(raw))
    except ValidationError as e:
        raise StackConfigError(_problems_from(e)) from None
    problems = cross_section_problems(config, secrets_decrypted=secrets_decrypted)
    if problems:
        raise StackConfigError(problems)
    return config
