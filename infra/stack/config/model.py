"""The typed model of a stack's configuration, and its only reader of Pulumi config.

Every key of `Pulumi.<stack>.yaml` under the project's namespace is validated here before any
resource is registered: unknown keys, wrong types, out-of-range numbers and the rules that tie
sections together (a workload naming an unknown node pool, gunicorn's keep-alive not above
the ALB idle timeout, ...). Each problem is reported with the key path as written in YAML,
e.g. `nodePools.workers.maxSize`.

Keys are camelCase in YAML and snake_case in Python. Secrets never live in this model: the
program generates them and keeps them as `pulumi.Output`s.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
)
from pydantic.alias_generators import to_camel

from stack.config.catalog import instance_types

PROJECT = "django-eks"
"""The Pulumi project name: the namespace of this program's config keys."""

NODE_POOL_LABEL = "django-eks/node-pool"
"""Node label carrying the pool's config name; managed node group names are generated."""

# EKS standard support ends 14 months after release; the cost model prices the extended
# support surcharge after these dates (AWS EKS Kubernetes version calendar).
KUBERNETES_STANDARD_SUPPORT_ENDS = {
    "1.33": "2026-07-29",
    "1.34": "2026-12-02",
    "1.35": "2027-03-27",
}
KubernetesVersion = Literal["1.33", "1.34", "1.35"]
LogType = Literal["api", "audit", "authenticator", "controllerManager", "scheduler"]


class Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=to_camel,
        populate_by_name=True,
        strict=False,
    )


def _k8s_name(value: str) -> str:
    if not re.fullmatch(r"[a-z]([-a-z0-9]{0,22}[a-z0-9])?", value):
        raise ValueError(
            "must be 1-24 lowercase letters, digits or '-', starting with a letter "
            "and not ending with '-'"
        )
    return value


PoolName = Annotated[str, AfterValidator(_k8s_name)]

_LABEL_KEY = re.compile(r"([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")
_LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?")


def _label_key(value: str) -> str:
    if not _LABEL_KEY.fullmatch(value) or len(value) > 316:
        raise ValueError(f"{value!r} is not a valid Kubernetes label key")
    return value


def _label_value(value: str) -> str:
    if not _LABEL_VALUE.fullmatch(value):
        raise ValueError(f"{value!r} is not a valid Kubernetes label value")
    return value


LabelKey = Annotated[str, AfterValidator(_label_key)]
LabelValue = Annotated[str, AfterValidator(_label_value)]


class NetworkConfig(Model):
    """The VPC: its CIDR, how many AZs it spans, and how many NAT gateways it pays for."""

    cidr: str = Field("10.0.0.0/16", description="IPv4 CIDR of the VPC, /16 to /20.")
    az_count: int = Field(3, ge=2, le=6, description="Availability zones (EKS needs 2+).")
    nat_gateways: Literal["single", "perAz"] = Field(
        "single",
        description="'single': one NAT gateway for all AZs (cheap; an AZ outage cuts egress). "
        "'perAz': one per AZ (each private subnet egresses in its own AZ).",
    )

    @field_validator("cidr")
    @classmethod
    def _cidr(cls, value: str) -> str:
        try:
            network = ipaddress.IPv4Network(value)
        except ValueError as e:
            raise ValueError(f"{value!r} is not an IPv4 network CIDR ({e})") from None
        if not 16 <= network.prefixlen <= 20:
            raise ValueError(f"prefix /{network.prefixlen} must be between /16 and /20")
        return value


# An IAM role or user ARN, with or without a path. EKS access entries take role ARNs with
# their path (unlike aws-auth ConfigMap entries), and no STS session ARN (assumed-role/...):
# https://docs.aws.amazon.com/eks/latest/userguide/creating-access-entries.html
_PRINCIPAL_ARN = re.compile(
    r"arn:aws(-cn|-us-gov)?:iam::\d{12}:(role|user)/([\w+=,.@-]+/)*[\w+=,.@-]{1,64}"
)
_SESSION_ARN = re.compile(r"arn:aws(-cn|-us-gov)?:sts::\d{12}:assumed-role/([^/]+)/.+")


def _principal_arn(value: str) -> str:
    if _PRINCIPAL_ARN.fullmatch(value):
        return value
    session = _SESSION_ARN.fullmatch(value)
    if session:
        raise ValueError(
            f"{value!r} is an STS session, which EKS access entries do not accept; give the "
            f"role's IAM ARN instead (arn:aws:iam::<account>:role/<path/>{session.group(2)}, "
            "the path included, as `aws iam get-role` shows it)"
        )
    raise ValueError(
        f"{value!r} is not an IAM role or user ARN "
        "(arn:aws:iam::<12-digit account>:role/<path/>name or :user/<path/>name)"
    )


PrincipalArn = Annotated[str, AfterValidator(_principal_arn)]


class ClusterAccessConfig(Model):
    """Who may use the cluster's Kubernetes API: EKS access entries, not the deployer."""

    admin_principal_arns: list[PrincipalArn] = Field(
        default_factory=list,
        description="IAM roles/users with cluster admin (the deploy role, operators). "
        "At least one is needed to deploy.",
    )
    view_principal_arns: list[PrincipalArn] = Field(
        default_factory=list,
        description="IAM roles/users with read-only access (AmazonEKSViewPolicy: operators who "
        "look; not enough for a preview that shows server-side errors, see "
        "previewPrincipalArns).",
    )
    preview_principal_arns: list[PrincipalArn] = Field(
        default_factory=list,
        description="IAM roles/users that preview (the pull-request preview role): Kubernetes "
        "group django-eks:previewers, whose writes the API server admits only as dry runs "
        "(docs/previews.md). They can read the stack's Secrets.",
    )

    @field_validator("admin_principal_arns", "view_principal_arns", "preview_principal_arns")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        repeated = sorted({arn for arn in value if value.count(arn) > 1})
        if repeated:
            raise ValueError(f"{', '.join(repeated)} listed more than once")
        return value

    @field_validator("view_principal_arns", "preview_principal_arns")
    @classmethod
    def _not_both(cls, value: list[str], info: ValidationInfo) -> list[str]:
        for other, role in (("admin_principal_arns", "an admin"), ("view_principal_arns", "a viewer")):
            if other == info.field_name:
                continue
            both = sorted(set(info.data.get(other) or ()) & set(value))
            if both:
                raise ValueError(
                    f"{', '.join(both)} is also {role}; EKS allows one access entry per "
                    "principal, so list it once"
                )
        return value


class ClusterConfig(Model):
    """The EKS control plane."""

    version: KubernetesVersion = Field(
        "1.35",
        description="Kubernetes minor version of the control plane, the node groups and the "
        "add-ons (each add-on at the build pinned for it in data/eks-addon-versions.csv, or EKS's "
        "default build for it).",
    )
    support_type: Literal["STANDARD", "EXTENDED"] = Field(
        "STANDARD",
        description="EKS support policy: STANDARD upgrades the cluster automatically when "
        "standard support ends; EXTENDED keeps the version and bills the extended-support rate.",
    )
    access: ClusterAccessConfig = Field(default_factory=ClusterAccessConfig)
    endpoint_public_access: bool = Field(
        True, description="Whether the API endpoint is reachable from the internet."
    )
    public_access_cidrs: list[str] = Field(
        default_factory=lambda: ["0.0.0.0/0"],
        description="CIDRs allowed to reach the public API endpoint.",
    )
    log_types: list[LogType] = Field(
        default_factory=lambda: list[LogType](["api", "audit", "authenticator"]),
        description="Control-plane log types sent to CloudWatch Logs.",
    )

    @field_validator("public_access_cidrs")
    @classmethod
    def _cidrs(cls, value: list[str], info: ValidationInfo) -> list[str]:
        for cidr in value:
            try:
                ipaddress.IPv4Network(cidr)
            except ValueError as e:
                raise ValueError(f"{cidr!r} is not an IPv4 CIDR ({e})") from None
        if info.data.get("endpoint_public_access") and not value:
            raise ValueError("must list at least one CIDR when endpointPublicAccess is true")
        return value

    @field_validator("log_types")
    @classmethod
    def _unique_logs(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("log types must not repeat")
        return value


class Taint(Model):
    key: LabelKey
    value: LabelValue | None = None
    effect: Literal["NoSchedule", "NoExecute", "PreferNoSchedule"]


class NodePoolConfig(Model):
    """One EKS managed node group."""

    instance_type: str = Field("m4.large", description="EC2 instance type from the catalog.")
    min_size: int = Field(1, ge=0, le=100, description="Fewest nodes.")
    desired_size: int = Field(
        2, ge=0, le=100, description="Nodes at creation; later changes by autoscaling kept."
    )
    max_size: int = Field(3, ge=1, le=100, description="Most nodes.")
    disk_size_gib: int = Field(20, ge=20, le=1000, description="gp3 root volume size.")
    capacity_type: Literal["ON_DEMAND", "SPOT"] = Field(
        "ON_DEMAND", description="SPOT is cheaper but nodes can be reclaimed with 2 minutes' notice."
    )
    labels: dict[LabelKey, LabelValue] = Field(
        default_factory=dict, description="Extra Kubernetes labels on the nodes."
    )
    taints: list[Taint] = Field(default_factory=list, description="Kubernetes taints.")

    @field_validator("instance_type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        known = instance_types()
        if value not in known:
            raise ValueError(
                f"{value!r} is not in the instance catalog; known: {', '.join(known)}"
            )
        return value

    @field_validator("desired_size")
    @classmethod
    def _desired(cls, value: int, info: ValidationInfo) -> int:
        low = info.data.get("min_size")
        if low is not None and value < low:
            raise ValueError(f"desiredSize {value} is below minSize {low}")
        return value

    @field_validator("max_size")
    @classmethod
    def _max(cls, value: int, info: ValidationInfo) -> int:
        for key, name in (("min_size", "minSize"), ("desired_size", "desiredSize")):
            other = info.data.get(key)
            if other is not None and value < other:
                raise ValueError(
                    f"maxSize {value} is below {name} {other} "
                    "(need minSize <= desiredSize <= maxSize)"
                )
        return value

    @property
    def schedules_system_pods(self) -> bool:
        """Whether pods without tolerations (CoreDNS, controllers) can run on this pool."""
        return not any(t.effect in ("NoSchedule", "NoExecute") for t in self.taints)


class ReplicaBounds(Model):
    min_replicas: int = Field(1, ge=1, le=100, description="Fewest pods.")
    max_replicas: int = Field(3, ge=1, le=200, description="Most pods (capacity is planned for it).")

    @field_validator("max_replicas")
    @classmethod
    def _bounds(cls, value: int, info: ValidationInfo) -> int:
        low = info.data.get("min_replicas")
        if low is not None and value < low:
            raise ValueError(f"maxReplicas {value} is below minReplicas {low}")
        return value


class WorkerAutoscaling(ReplicaBounds):
    """KEDA scales the workers on the length of their Celery queue's Redis list."""

    min_replicas: int = Field(
        1,
        ge=0,
        le=100,
        description="Fewest pods. 0 scales to zero when the queue is empty: no idle worker is "
        "paid for, but the first job after idle waits for a pod (and perhaps a node) to start.",
    )
    queue_length_per_replica: int = Field(
        1,
        ge=1,
        le=1000,
        description="Waiting jobs per worker pod KEDA aims for; a multiple of worker.concurrency "
        "(equal to it: every waiting job gets a free process).",
    )
    activation_queue_length: int = Field(
        0,
        ge=0,
        le=10000,
        description="Waiting jobs above which a Deployment scaled to zero gets its first pod.",
    )


class WebAutoscaling(ReplicaBounds):
    min_replicas: int = Field(2, ge=1, le=100, description="HPA lower bound.")
    max_replicas: int = Field(6, ge=1, le=200, description="HPA upper bound (capacity is planned for it).")
    target_cpu_percent: int = Field(70, ge=10, le=100, description="HPA target CPU utilisation of requests.")


WebServer = Literal["granian", "gunicorn", "uwsgi"]
"""The application servers the web pods can run (runtime/django_eks_runtime/launch.py builds their commands)."""


class WebConfig(Model):
    """The Django web Deployment: one application server process per pod by default."""

    server: WebServer = Field(
        "granian",
        description="Application server: 'granian' (its Rust runtime holds the connections; the least "
        "CPU per request of the maintained servers, docs/web-server.md; keepAliveSeconds at most 60, so "
        "loadBalancer.idleTimeoutSeconds below it), 'gunicorn' (gthread) or 'uwsgi' (its HTTP router holds "
        "the connections; in maintenance mode since 2022).",
    )

    node_pool: PoolName = Field("default", description="Node pool the pods run on.")
    replicas: int = Field(
        2,
        ge=1,
        le=100,
        description="Steady-state pods the plan sizes nodes and cost for; the live count is the "
        "HPA's, within autoscaling bounds.",
    )
    gunicorn_workers: int = Field(
        1, ge=1, le=16, description="Worker processes per pod (gunicorn and granian --workers, uWSGI --processes)."
    )
    threads: int = Field(
        8, ge=2, le=64, description="Threads per worker process (granian --blocking-threads; gunicorn gthread: >= 2 "
        "for keep-alive)."
    )
    keep_alive_seconds: int = Field(
        60,
        ge=2,
        le=4001,
        description="Idle keep-alive (gunicorn --keep-alive, uWSGI --http-keepalive, granian "
        "--http1-header-read-timeout, at most 60); must exceed the ALB idle timeout.",
    )
    graceful_timeout_seconds: int = Field(
        30,
        ge=1,
        le=600,
        description="Time for requests in flight after SIGTERM (gunicorn --graceful-timeout, uWSGI "
        "--worker-reload-mercy, granian --workers-kill-timeout).",
    )
    timeout_seconds: int = Field(
        60,
        ge=5,
        le=600,
        description="A worker silent (gunicorn --timeout) or a request running (uWSGI --harakiri) "
        "this long is killed (granian has no such limit).",
    )
    pre_stop_seconds: int = Field(
        15, ge=0, le=120, description="Pause before SIGTERM so the ALB deregisters the pod first."
    )
    load_test_endpoint: bool = Field(
        False,
        description="The demo's: serve `GET /api/io?ms=N` (API_IO_ENABLED), the I/O-bound workload of `make load`: "
        "for an experiment stack only, since any client can hold a request thread for up to 5 s per call.",
    )
    cpu_millicores: int = Field(500, ge=50, le=64000, description="CPU request per pod.")
    memory_mib: int = Field(512, ge=64, le=262144, description="Memory request and limit per pod.")
    autoscaling: WebAutoscaling = Field(default_factory=WebAutoscaling)


class WorkerConfig(Model):
    """The Celery worker Deployment: `-c 1` per pod by default, scaled by replicas."""

    node_pool: PoolName = Field("default", description="Node pool the pods run on.")
    replicas: int = Field(
        1,
        ge=1,
        le=100,
        description="Steady-state pods the plan sizes nodes and cost for; the live count is "
        "KEDA's, within autoscaling bounds, from the queue length.",
    )
    concurrency: int = Field(1, ge=1, le=32, description="celery worker --concurrency per pod.")
    cpu_millicores: int = Field(1000, ge=50, le=64000, description="CPU request per pod.")
    memory_mib: int = Field(768, ge=64, le=262144, description="Memory request and limit per pod.")
    task_time_limit_seconds: int = Field(
        300, ge=1, le=86400, description="Hard time limit of a task (task_time_limit)."
    )
    visibility_timeout_seconds: int = Field(
        3600,
        ge=2,
        le=43200,
        description="Redis broker visibility timeout; must exceed the task time limit.",
    )
    autoscaling: WorkerAutoscaling = Field(default_factory=WorkerAutoscaling)

    @field_validator("autoscaling")
    @classmethod
    def _target_matches_concurrency(cls, value: WorkerAutoscaling, info: ValidationInfo) -> WorkerAutoscaling:
        concurrency = info.data.get("concurrency")
        if concurrency is not None and value.queue_length_per_replica % concurrency:
            raise ValueError(
                f"autoscaling.queueLengthPerReplica {value.queue_length_per_replica} must be a "
                f"multiple of concurrency {concurrency}: with prefetch 1 a pod takes "
                f"{concurrency} jobs at a time"
            )
        return value

    @field_validator("visibility_timeout_seconds")
    @classmethod
    def _above_time_limit(cls, value: int, info: ValidationInfo) -> int:
        limit = info.data.get("task_time_limit_seconds")
        if limit is not None and value <= limit:
            raise ValueError(
                f"visibilityTimeoutSeconds {value} must exceed taskTimeLimitSeconds {limit}, "
                "or an unacknowledged task is delivered twice"
            )
        return value


# --- worker Deployments per queue, Celery beat, CronJobs (`workers`, `beat`, `cronJobs`) ---------

_QUEUE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}")


def _queue_name(value: str) -> str:
    # A Celery queue is the Redis list of the same name (queue_scaling.py); WORKER_QUEUES
    # carries them comma-separated, so no comma, blank or control character.
    if not _QUEUE_NAME.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a queue name: 1-100 letters, digits, '_', '.', ':' or '-', "
            "starting with a letter or digit"
        )
    return value


QueueName = Annotated[str, AfterValidator(_queue_name)]
ShortName = Annotated[str, AfterValidator(_k8s_name)]
"""A key of `workers` or `cronJobs`: a DNS label of up to 24 characters (the Deployment is
`worker-<key>`, the CronJob `cron-<key>`)."""


class WorkerDeploymentConfig(WorkerConfig):
    """One worker Deployment of `workers`: its own queues, shape, replicas and KEDA scaler."""

    queues: list[QueueName] = Field(
        min_length=1,
        description="Celery queues the pods consume (WORKER_QUEUES, `celery worker -Q`); KEDA "
        "scales the Deployment on their Redis lists, one trigger each, to the count the longest "
        "asks for. A queue is served by one Deployment only.",
    )

    @field_validator("queues")
    @classmethod
    def _unique_queues(cls, value: list[str]) -> list[str]:
        repeated = sorted({q for q in value if value.count(q) > 1})
        if repeated:
            raise ValueError(f"{', '.join(repeated)} listed more than once")
        return value


class BeatConfig(Model):
    """The Celery beat scheduler: one pod, never two (a StatefulSet of one replica)."""

    node_pool: PoolName | None = Field(
        None, description="Node pool the pod runs on; default: the pool the system pods run on."
    )
    cpu_millicores: int = Field(100, ge=50, le=4000, description="CPU request of the pod.")
    memory_mib: int = Field(256, ge=64, le=8192, description="Memory request and limit of the pod.")


_CRON_FIELD = r"[0-9A-Za-z,/*?-]+"
_CRON = re.compile(rf"{_CRON_FIELD}( {_CRON_FIELD}){{4}}|@(yearly|annually|monthly|weekly|daily|midnight|hourly)")


def _cron_schedule(value: str) -> str:
    # The CronJob controller reads five fields or a macro (robfig/cron's standard parser,
    # https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/#schedule-syntax);
    # TZ= inside the schedule is refused by the API server since 1.27: timeZone is set instead.
    if not _CRON.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a cron schedule: five fields (minute hour day-of-month month "
            "day-of-week, e.g. '*/15 * * * *') or a macro such as @hourly, in UTC"
        )
    return value


class CronJobConfig(Model):
    """A management command run on a schedule (a CronJob; one run at a time)."""

    schedule: Annotated[str, AfterValidator(_cron_schedule)] = Field(
        description="Cron schedule in UTC: five fields or @hourly, @daily, ..."
    )
    command: list[str] = Field(
        min_length=1,
        description="The management command and its arguments, run as `python -m django <command...>`.",
    )
    node_pool: PoolName | None = Field(
        None, description="Node pool the pods run on; default: the pool the system pods run on."
    )
    cpu_millicores: int = Field(100, ge=50, le=64000, description="CPU request of the pod.")
    memory_mib: int = Field(256, ge=64, le=262144, description="Memory request and limit of the pod.")
    deadline_seconds: int = Field(
        600, ge=10, le=86400, description="A run still going after this long is killed."
    )


class JobsConfig(Model):
    """The demo's settings (DEMO_SETTINGS): what the service accepts and stores at once, which sets
    the memory its pods need (stack/memory.py)."""

    max_pixels: int = Field(
        40_000_000,
        ge=1_000_000,
        le=500_000_000,
        description="Largest accepted image, width x height (JOBS_MAX_PIXELS); sizes the pods' memory.",
    )
    uploads_per_web_pod: int = Field(
        1,
        ge=1,
        le=64,
        description="Uploads a web pod inspects and stores at once (a multiple of web.gunicornWorkers, "
        "the server's processes); more wait, then get 503.",
    )


class ReconcilerConfig(Model):
    """The demo's settings (DEMO_SETTINGS): the CronJob that re-enqueues stuck jobs and fails those
    past their attempt limit."""

    every_minutes: int = Field(
        1, ge=1, le=60, description="Minutes between reconciler runs (a CronJob; 1 is its finest period)."
    )
    queued_after_seconds: int = Field(
        600,
        ge=30,
        le=86400,
        description="A job queued this long since its last publish gets another message.",
    )
    running_grace_seconds: int = Field(
        60,
        ge=0,
        le=3600,
        description="A job running longer than worker.taskTimeLimitSeconds plus this lost its worker "
        "and is re-enqueued.",
    )
    max_attempts: int = Field(
        3, ge=1, le=20, description="Deliveries that died with their worker before a job is failed."
    )


def _node_type(prefix: str) -> Any:
    def check(value: str) -> str:
        if not re.fullmatch(rf"{prefix}\.[a-z0-9]+\.[a-z0-9]+", value):
            raise ValueError(f"{value!r} is not an instance class of the form {prefix}.<family>.<size>")
        return value

    return AfterValidator(check)


CacheEngine = Literal["valkey", "redis"]

CACHE_ENGINE_VERSIONS: dict[str, tuple[str, ...]] = {
    "valkey": ("7.2", "8.0", "8.1", "8.2"),
    "redis": ("7.0", "7.1"),
}
"""ElastiCache versions offered per engine, oldest first; the last is the default. Redis OSS
on ElastiCache ends at 7.1 (AWS, "Supported engines and versions")."""


class RedisConfig(Model):
    """ElastiCache (Valkey or Redis OSS), cluster mode disabled (Celery cannot use cluster mode)."""

    node_type: Annotated[str, _node_type("cache")] = Field(
        "cache.t4g.micro", description="ElastiCache node type."
    )
    replicas: int = Field(
        0, ge=0, le=5, description="Read replicas; with 1+ failover and multi-AZ are on."
    )
    engine: CacheEngine = Field(
        "valkey",
        description="'valkey' (AWS's recommended engine, about 20% cheaper per node-hour) or "
        "'redis' (Redis OSS, ends at 7.1). Changing an existing group from redis to valkey "
        "upgrades it in place (same endpoint, no data lost); valkey back to redis replaces it "
        "(a new, empty group: queued jobs are lost).",
    )
    engine_version: str | None = Field(
        None,
        description="Engine version: valkey 7.2, 8.0, 8.1 or 8.2; redis 7.0 or 7.1. Default: the "
        "newest of the engine. Only upgrades happen in place: a lower version replaces the group.",
    )

    @field_validator("engine_version")
    @classmethod
    def _engine_version(cls, value: str | None, info: ValidationInfo) -> str | None:
        engine = info.data.get("engine")
        if value is not None and engine in CACHE_ENGINE_VERSIONS:
            offered = CACHE_ENGINE_VERSIONS[engine]
            if value not in offered:
                raise ValueError(f"{engine} versions on ElastiCache here: {', '.join(offered)}")
        return value

    @property
    def version(self) -> str:
        """The engine version to run: the configured one, else the engine's newest."""
        return self.engine_version or CACHE_ENGINE_VERSIONS[self.engine][-1]


class DatabaseConfig(Model):
    """RDS for PostgreSQL."""

    instance_class: Annotated[str, _node_type("db")] = Field(
        "db.t4g.micro", description="RDS instance class."
    )
    engine_version: Literal["16", "17"] = Field(
        "17",
        description="PostgreSQL major version. Raising it upgrades the instance in place (RDS major "
        "version upgrade, with the default parameter group of the new version), applied at once "
        "without deletionProtection and in the next maintenance window with it. RDS never "
        "downgrades: lowering it is refused by RDS (restore a snapshot into a new stack instead).",
    )
    storage_gib: int = Field(20, ge=20, le=65536, description="gp3 storage.")
    multi_az: bool = Field(False, description="A standby in another AZ (billed too).")
    deletion_protection: bool = Field(
        False, description="Refuse deletion; a final snapshot is kept if it is ever deleted."
    )
    backup_retention_days: int = Field(7, ge=0, le=35, description="Automated backup retention.")


class LoadBalancerConfig(Model):
    """The Application Load Balancer in front of the web pods."""

    idle_timeout_seconds: int = Field(
        55, ge=1, le=4000, description="ALB idle timeout: below web.keepAliveSeconds, which granian keeps at most 60."
    )
    certificate_arn: str | None = Field(
        None,
        description="ACM certificate ARN, in the stack's region: HTTPS on 443 and HTTP redirected "
        "to it; without it the ALB serves plain HTTP.",
    )

    @field_validator("certificate_arn")
    @classmethod
    def _arn(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(
            r"arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[0-9a-f-]{36}", value
        ):
            raise ValueError(f"{value!r} is not an ACM certificate ARN")
        return value

    domain_name: str | None = Field(
        None,
        description="The app's domain name (e.g. app.example.com), the name clients use and the "
        "certificate covers: Django's allowed host and trusted CSRF origin, and the appUrl "
        "output. Required with certificateArn; without it the app answers on the ALB's own name.",
    )
    hosted_zone_id: str | None = Field(
        None,
        description="Route 53 public hosted zone of domainName: the stack creates the alias "
        "record domainName -> ALB in it. Without it, point the domain at albDnsName yourself.",
    )

    @field_validator("domain_name")
    @classmethod
    def _domain(cls, value: str | None) -> str | None:
        if value is not None and (problem := domain_name_problem(value)):
            raise ValueError(f"{value!r} {problem}")
        return value

    @field_validator("hosted_zone_id")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        # Route 53 resource IDs: up to 32 characters, upper-case letters and digits
        # (https://docs.aws.amazon.com/Route53/latest/APIReference/API_HostedZone.html).
        if value is not None and not re.fullmatch(r"[A-Z0-9]{1,32}", value):
            raise ValueError(
                f"{value!r} is not a Route 53 hosted zone ID (up to 32 upper-case letters and "
                "digits, e.g. Z0123456789ABCDEFGHIJ, without /hostedzone/)"
            )
        return value


_DOMAIN_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")


def domain_name_problem(value: str) -> str | None:
    """Why `value` cannot be the app's host name, or None.

    A lower-case fully qualified name without a trailing dot or wildcard: what a browser sends
    as Host and what Route 53 and ACM take (labels of 1-63 letters, digits and inner hyphens,
    253 characters in all: RFC 1035 section 2.3.1, RFC 1123 section 2.1).
    """
    labels = value.split(".")
    if value != value.lower():
        return "must be lower case (browsers send the host in lower case)"
    if len(value) > 253:
        return "is longer than 253 characters"
    if len(labels) < 2:
        return "is not a fully qualified domain name (e.g. app.example.com)"
    if not all(_DOMAIN_LABEL.fullmatch(label) for label in labels) or labels[-1].isdigit():
        return (
            "is not a domain name: labels of 1-63 letters, digits and inner hyphens, separated "
            "by single dots, without a trailing dot, scheme, port, path or wildcard"
        )
    return None


Expander = Literal["least-waste", "most-pods", "least-nodes", "random"]


class ClusterAutoscalerConfig(Model):
    """The Cluster Autoscaler: node groups follow Pending pods within minSize..maxSize."""

    expander: Expander = Field(
        "least-waste",
        description="Which pool grows when several could take the Pending pods: 'least-waste' "
        "leaves the least idle CPU and memory after placing them.",
    )
    scale_down_unneeded_minutes: int = Field(
        10, ge=1, le=1440, description="How long a node must be unneeded before it is removed."
    )
    scale_down_delay_after_add_minutes: int = Field(
        10, ge=0, le=1440, description="No scale-down for this long after a scale-up."
    )
    scale_down_utilization_threshold: float = Field(
        0.5,
        gt=0,
        le=1,
        description="A node whose pods request less than this share of its CPU and memory is a "
        "scale-down candidate.",
    )


class ImageConfig(Model):
    """The image of the app the stack deploys: the demo service's, or yours (`app`). Without a
    repository, the stack's own ECR repository is used."""

    repository: str | None = Field(
        None,
        description="ECR repository URL (<account>.dkr.ecr.<region>.amazonaws.com/<name>); "
        "default: the stack's own.",
    )
    tag: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$",
        description="Image tag, resolved to its digest at deploy time (pods run the digest); "
        "the migration Job runs once per image. The deploy workflow sets the commit's tag. "
        "Without a tag only the platform is deployed, not the app (a new stack's first step).",
    )
    digest: str | None = Field(
        None,
        pattern=r"^sha256:[0-9a-f]{64}$",
        description="The image by digest instead of a tag (an image built and pushed elsewhere): "
        "pods run <repository>@<digest> as given, without looking it up. A tag or a digest, not both.",
    )

    @field_validator("digest")
    @classmethod
    def _tag_or_digest(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and info.data.get("tag") is not None:
            raise ValueError("give image.tag or image.digest, not both: the tag is resolved to a digest")
        return value

    @property
    def named(self) -> bool:
        """Whether an image is named (a tag or a digest): without one only the platform is deployed."""
        return self.tag is not None or self.digest is not None

    @field_validator("repository")
    @classmethod
    def _ecr(cls, value: str | None) -> str | None:
        # Mirrors stack.platform.registry.parse_ecr_url: the digest is resolved from ECR.
        if value is not None and not re.fullmatch(
            r"\d{12}\.dkr\.ecr\.[a-z]{2}(-gov)?-[a-z]+-\d\.amazonaws\.com(\.cn)?"
            r"/[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*",
            value,
        ):
            raise ValueError(
                f"{value!r} is not an ECR repository URL "
                "(<12-digit account>.dkr.ecr.<region>.amazonaws.com/<name>): pods run the "
                "image by the digest ECR resolves the tag to"
            )
        return value


class BenchmarkConfig(Model):
    """The demo's settings (DEMO_SETTINGS): the service's benchmark (`python -m benchmarks run`) as a
    Job on one node pool."""

    node_pool: PoolName | None = Field(
        None,
        description="Node pool whose instance type the benchmark Job measures, claiming one whole "
        "node of it; unset: no Job.",
    )
    fast: bool = Field(False, description="Run the benchmark's fast mode (under a minute) instead of the full run.")


class StorageConfig(Model):
    """The S3 bucket of uploads and results, and the assumptions its cost estimate rests on."""

    retention_days: int = Field(
        7,
        ge=1,
        le=365,
        description="Days a job and its files are kept; the bucket's lifecycle rule expires "
        "objects a day later, as a backstop to the app's own expiry.",
    )
    on_destroy: Literal["empty", "keep"] = Field(
        "empty",
        description="'empty': destroy deletes the bucket with its objects. 'keep': destroy "
        "leaves the bucket (and its settings) in the account; its lifecycle rule still "
        "empties it.",
    )
    jobs_per_day: int = Field(
        1000, ge=0, le=10_000_000, description="Expected jobs per day (cost estimate only)."
    )
    average_upload_mib: float = Field(
        2.0, gt=0, le=10, description="Average upload size in MiB (cost estimate only)."
    )
    average_result_mib: float = Field(
        1.0, gt=0, le=10, description="Average result size in MiB (cost estimate only)."
    )


# --- observability (logs, alarms, dashboard) ---------------------------------------------

LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)
"""The retention periods CloudWatch Logs accepts (PutRetentionPolicy `retentionInDays`,
https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutRetentionPolicy.html)."""

SnsProtocol = Literal["email", "email-json", "http", "https", "sms", "sqs", "lambda", "firehose", "application"]
"""The protocols an SNS topic subscription takes (Subscribe `Protocol`,
https://docs.aws.amazon.com/sns/latest/api/API_Subscribe.html)."""


class AlarmSubscriber(Model):
    """Who gets the alarms: one SNS subscription."""

    protocol: SnsProtocol = Field(description="SNS protocol: email, email-json, http, https, sms, sqs, lambda, firehose, application.")
    endpoint: str = Field(min_length=1, description="The address for the protocol: an email address, a URL, a phone number, an ARN.")

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str, info: ValidationInfo) -> str:
        protocol = info.data.get("protocol")
        if protocol in ("email", "email-json") and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", value):
            raise ValueError(f"{value!r} is not an email address")
        if protocol in ("http", "https") and not value.startswith(f"{protocol}://"):
            raise ValueError(f"{value!r} does not start with {protocol}://")
        if protocol in ("sqs", "lambda", "firehose", "application") and not value.startswith("arn:"):
            raise ValueError(f"{value!r} is not an ARN ({protocol} subscriptions take one)")
        return value


class AlarmThresholds(Model):
    """Where each alarm fires. Unset: derived from the stack (see each key)."""

    alb_error_percent: float = Field(
        5.0, gt=0, le=100, description="5xx answers (the targets' and the ALB's own) as a percentage of requests, over 5 minutes."
    )
    target_p99_seconds: float | None = Field(
        None,
        gt=0,
        le=4000,
        description="p99 of the targets' response time, over 5 minutes. Unset: half of web.timeoutSeconds "
        "(the time after which a request is killed).",
    )
    pending_minutes: int = Field(
        10,
        ge=2,
        le=60,
        description="Minutes pods may stay Pending before the alarm (longer than a node takes to join "
        "when the Cluster Autoscaler adds one).",
    )
    database_cpu_percent: float = Field(80.0, gt=0, le=100, description="RDS CPUUtilization, over 15 minutes.")
    database_free_storage_percent: float = Field(
        10.0, gt=0, lt=100, description="RDS FreeStorageSpace below this share of database.storageGib."
    )
    database_connections: int | None = Field(
        None,
        ge=1,
        le=100000,
        description="RDS DatabaseConnections above this. Unset: the connections the app's pods can hold at "
        "their maximum replicas (web processes x threads, worker concurrency, the reconciler and migrate "
        "Job): more means something else holds connections, or they leak.",
    )
    cache_memory_percent: float = Field(
        80.0,
        gt=0,
        le=100,
        description="ElastiCache DatabaseMemoryUsagePercentage per node (the broker never evicts: at 100% "
        "it refuses writes, and jobs are refused).",
    )
    queue_wait_p95_seconds: dict[str, float] | None = Field(
        None,
        description="Celery queue -> seconds: the p95 of a task's wait in its queue (publish to start, "
        "the app's celery_task_queue_wait_seconds) over 10 minutes, in Amazon Managed Service for "
        "Prometheus. A queue left out, or the whole map unset: derived from the autoscaling (the "
        "time KEDA and the Cluster Autoscaler take to start a worker on a new node; "
        "docs/operations.md says how).",
    )
    task_failure_percent: float = Field(
        5.0,
        gt=0,
        le=100,
        description="Failed tasks as a percentage of finished ones (succeeded + failed) per queue, over 10 "
        "minutes (the app's celery_tasks_total).",
    )

    @field_validator("queue_wait_p95_seconds")
    @classmethod
    def _queue_waits(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        for queue, seconds in (value or {}).items():
            if not queue:
                raise ValueError("a queue name is empty")
            if not 0 < seconds <= 86400:
                raise ValueError(f"{queue}: {seconds:g} s is not between 0 (excluded) and 86400")
        return value


SCRAPE_INTERVAL_MIN_SECONDS = 30
"""The shortest interval an AWS managed collector takes: "The scraper config can't specify a
scrape interval of less than 30 seconds" (Amazon Managed Service for Prometheus User Guide,
https://docs.aws.amazon.com/prometheus/latest/userguide/AMP-collector-how-to.html, Scraper
configuration, limitations)."""


class MetricsConfig(Model):
    """The app's own metrics (Prometheus exposition at /metrics on every web and worker pod), scraped by
    an AWS managed collector into an Amazon Managed Service for Prometheus workspace, with alerting rules
    and an alert manager sending to the alarm topic."""

    enabled: bool = Field(
        True,
        description="false: no workspace, collector, rules or alert manager (the pods still serve /metrics). "
        "Only with observability.enabled.",
    )
    scrape_interval_seconds: int = Field(
        30,
        ge=SCRAPE_INTERVAL_MIN_SECONDS,
        le=3600,
        description=f"How often the collector scrapes each pod; at least {SCRAPE_INTERVAL_MIN_SECONDS} "
        "(the managed collector's lower bound). Samples ingested, and so the bill, scale with 1/interval.",
    )
    series_per_pod: int = Field(
        400,
        ge=1,
        le=1_000_000,
        description="Time series one app pod exposes (histogram buckets per route or task, counters, the "
        "process's own): the volume estimate behind the plan's Prometheus line (cost estimate only).",
    )


class ObservabilityConfig(Model):
    """Container logs to CloudWatch Logs (the EKS CloudWatch observability add-on), alarms to an SNS
    topic, one dashboard; what the plan assumes to price the logs."""

    enabled: bool = Field(
        True,
        description="false: no add-on, log groups, alarms, topic or dashboard (and nothing of them in the "
        "cost); an experiment stack that lives an hour needs none.",
    )
    log_retention_days: int = Field(
        14, description=f"Days CloudWatch Logs keeps the container logs: one of {', '.join(map(str, LOG_RETENTION_DAYS))}."
    )
    subscribers: list[AlarmSubscriber] = Field(
        default_factory=list,
        description="SNS subscriptions of the alarm topic (an email subscription waits for its confirmation).",
    )
    thresholds: AlarmThresholds = Field(default_factory=AlarmThresholds)
    log_bytes_per_job: int = Field(
        4096,
        ge=0,
        le=10_000_000,
        description="Log bytes one job writes across the web (upload, status polls, result) and the worker "
        "(cost estimate only, times storage.jobsPerDay).",
    )
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    log_mib_per_pod_day: float = Field(
        10.0,
        ge=0,
        le=100_000,
        description="Log MiB an app pod writes a day without jobs (health checks, probes, start-up; cost "
        "estimate only, times the web and worker pods at their configured replicas).",
    )

    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        if value not in LOG_RETENTION_DAYS:
            raise ValueError(f"{value} is not a retention CloudWatch Logs accepts: {', '.join(map(str, LOG_RETENTION_DAYS))}")
        return value

    @property
    def metrics_enabled(self) -> bool:
        """Whether the stack collects the app's metrics: the metrics side needs the alarm topic."""
        return self.enabled and self.metrics.enabled


GITHUB_HOSTED_RUNNER = re.compile(r"(ubuntu|windows|macos)-(latest|[0-9][0-9.]*)(-arm)?")
"""GitHub's standard hosted runner labels: their egress addresses are GitHub's whole, shared,
changing ranges (docs.github.com "About GitHub-hosted runners", IP addresses)."""


class DeployConfig(Model):
    """Where the deploy workflow (.github/workflows/deploy-stack.yml) runs for this stack."""

    runner: list[str] = Field(
        default_factory=lambda: ["ubuntu-24.04"],
        min_length=1,
        description="The deploy job's `runs-on` labels. GitHub-hosted runners (the default) "
        "have no stable egress address: a stack whose API endpoint allowlists CIDRs or is "
        "private-only names a runner that reaches it (a self-hosted runner, or a larger runner "
        "with static IPs listed in cluster.publicAccessCidrs).",
    )

    @field_validator("runner")
    @classmethod
    def _labels(cls, value: list[str]) -> list[str]:
        for label in value:
            if not label.strip() or label != label.strip():
                raise ValueError(f"{label!r} is not a runner label (no blanks around it)")
        return value

    @property
    def github_hosted(self) -> bool:
        """Whether the labels name one of GitHub's standard hosted runners."""
        return len(self.runner) == 1 and GITHUB_HOSTED_RUNNER.fullmatch(self.runner[0]) is not None


# --- the app: any Django + Celery project (absent: the demo service) ---------------------

_PYTHON_PATH = r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*"
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _python_path(kind: str, attribute: bool) -> Any:
    pattern = re.compile(rf"{_PYTHON_PATH}:{_PYTHON_PATH}" if attribute else rf"{_PYTHON_PATH}(:{_PYTHON_PATH})?")
    shape = "<module>:<callable>, e.g. mysite.wsgi:application" if attribute else "<module> or <module>:<attribute>"

    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise ValueError(f"{value!r} is not {kind} ({shape})")
        return value

    return AfterValidator(check)


def _env_name(value: str) -> str:
    if not _ENV_NAME.fullmatch(value):
        raise ValueError(f"{value!r} is not an environment variable name (letters, digits and '_', not starting with a digit)")
    return value


EnvName = Annotated[str, AfterValidator(_env_name)]


class EncryptedValue(Model):
    """A `secure:` value as the stack file stores it: ciphertext only the Pulumi engine (with the
    stack's secrets provider) decrypts. The engine hands the program the plain value; only an
    offline reading of the stack file (`make plan`, the tests) ever sees this."""

    secure: str = Field(min_length=1, description="Ciphertext written by `pulumi config set --secret`.")


SecretValue = SecretStr | EncryptedValue
"""A secret of `app.secrets`: the decrypted value (masked in every repr and dump of the config)
or, read offline from the stack file, its ciphertext."""


class AppConfig(Model):
    """Your Django + Celery project (docs/your-app.md, docs/app-contract.md). Without this
    section the stack deploys the demo service (service/) and the demo's settings apply:
    `jobs`, `reconciler`, `benchmark`, `web.loadTestEndpoint` (DEMO_SETTINGS)."""

    settings_module: Annotated[str, _python_path("a Python module", attribute=False)] = Field(
        description="DJANGO_SETTINGS_MODULE of every pod, e.g. mysite.settings."
    )
    wsgi: Annotated[str, _python_path("a WSGI callable", attribute=True)] = Field(
        description="The WSGI callable the web server serves (APP_WSGI), e.g. mysite.wsgi:application."
    )
    celery: Annotated[str, _python_path("a Celery app", attribute=False)] = Field(
        description="The Celery app, as `celery --app` takes it (APP_CELERY), e.g. mysite or mysite.celery:app."
    )
    health_path: str = Field(
        "/healthz",
        pattern=r"^/[A-Za-z0-9._~/-]*$",
        description="Path the ALB health-checks through the web pods' proxy (200 when the process "
        "serves), also the probe server's (APP_HEALTH_PATH). It must answer any Host header "
        "(ALB health checks carry the pod IP), before Django's ALLOWED_HOSTS check.",
    )
    uses_files_bucket: bool = Field(
        False,
        description="Whether the app stores files in the stack's S3 bucket: its web, worker and "
        "migration pods then get AWS_STORAGE_BUCKET_NAME, AWS_S3_REGION_NAME and read/write access "
        "to the bucket through Pod Identity. false: no bucket variable and no S3 permission for its pods.",
    )
    env: dict[EnvName, str] = Field(
        default_factory=dict,
        description="Extra environment of every app pod (the app's ConfigMap); not for secrets. "
        "Names the platform sets are refused.",
    )
    secrets: dict[EnvName, SecretValue] = Field(
        default_factory=dict,
        description="Secret environment of every app pod, each value set with `pulumi config set "
        "--secret --path app.secrets.<NAME> <value>` (a `secure:` value in the stack file): kept "
        "encrypted in the state and delivered in the app's Kubernetes Secret. Plain values are refused.",
    )

    @field_validator("secrets")
    @classmethod
    def _not_also_env(cls, value: dict[str, SecretValue], info: ValidationInfo) -> dict[str, SecretValue]:
        both = sorted(set(value) & set(info.data.get("env") or ()))
        if both:
            raise ValueError(f"{', '.join(both)} is also in app.env; give each variable once")
        return value

    @property
    def encrypted_secrets(self) -> list[str]:
        """The secrets still encrypted (read offline): their values are not known here."""
        return sorted(name for name, value in self.secrets.items() if isinstance(value, EncryptedValue))

    @property
    def decrypted_secrets(self) -> list[str]:
        """The secrets whose values are here: decrypted by the engine, or plain in the file."""
        return sorted(name for name, value in self.secrets.items() if isinstance(value, SecretStr))


DEMO_SETTINGS: dict[str, str] = {
    "jobs": "the demo's pixel limit and upload slots (JOBS_* environment)",
    "reconciler": "the demo's job reconciler CronJob",
    "benchmark": "the demo's benchmark Job",
    "web.loadTestEndpoint": "the demo's GET /api/io (API_IO_ENABLED)",
}
"""The stack file keys that configure the demo service alone: rendered only when the demo is the
app (no `app` section); set together with `app` they are errors."""


def demo_settings_set(config: StackConfig) -> list[str]:
    """The demo-only keys (DEMO_SETTINGS) a stack file sets."""
    found = [key for key in ("jobs", "reconciler", "benchmark") if key in config.model_fields_set]
    if "load_test_endpoint" in config.web.model_fields_set:
        found.append("web.loadTestEndpoint")
    return found


class StackConfig(Model):
    """Everything a stack file configures."""

    region: str = Field("us-east-1", pattern=r"^[a-z]{2}(-gov)?-[a-z]+-\d$", description="AWS region (read from aws:region).")
    network: NetworkConfig = Field(default_factory=NetworkConfig)
    cluster: ClusterConfig = Field(default_factory=ClusterConfig)
    node_pools: dict[PoolName, NodePoolConfig] = Field(
        default_factory=lambda: {"default": NodePoolConfig()},
        min_length=1,
        description="Managed node groups by pool name.",
    )
    web: WebConfig = Field(default_factory=WebConfig)
    worker: WorkerConfig = Field(default_factory=WorkerConfig)
    workers: dict[ShortName, WorkerDeploymentConfig] = Field(
        default_factory=dict,
        description="Worker Deployments by name, one per Celery queue or group of queues, each "
        "scaled by KEDA on its own lists; instead of `worker` (not both).",
    )
    beat: BeatConfig | None = Field(None, description="One Celery beat pod; unset: none.")
    cron_jobs: dict[ShortName, CronJobConfig] = Field(
        default_factory=dict, description="Management commands on a schedule, by CronJob name."
    )
    reconciler: ReconcilerConfig = Field(default_factory=ReconcilerConfig)
    jobs: JobsConfig = Field(default_factory=JobsConfig)
    redis: RedisConfig = Field(default_factory=RedisConfig)
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    load_balancer: LoadBalancerConfig = Field(default_factory=LoadBalancerConfig)
    image: ImageConfig = Field(default_factory=ImageConfig)
    cluster_autoscaler: ClusterAutoscalerConfig = Field(default_factory=ClusterAutoscalerConfig)
    benchmark: BenchmarkConfig = Field(default_factory=BenchmarkConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    deploy: DeployConfig = Field(default_factory=DeployConfig)
    observability: ObservabilityConfig = Field(default_factory=ObservabilityConfig)
    app: AppConfig | None = Field(
        None,
        description="Your Django + Celery project; without it the stack deploys the demo service.",
    )
