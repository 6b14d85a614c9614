"""The monthly cost of a stack, itemized, from its config and a price book.

A month is 730 hours. Node pools are priced at their desired size (the total), scaled in
(`monthly_usd_at_min`: every workload at its minimum replicas, the Cluster Autoscaler down to
the nodes they need, never below minSize) and scaled out (`monthly_usd_at_max`: every workload
at its maximum, the nodes that takes, never above maxSize). Prices are us-east-1 on-demand, bundled with their date
unless live prices are asked for (`stack.model.prices`).

Assumptions, also printed with every estimate:

* the ALB processes 1 LCU on average (itemized on its own line; a busy site uses more);
* an internet-facing ALB holds one public IPv4 address per AZ;
* SPOT pools are priced on-demand: an upper bound, no spot price is bundled;
* the container logs' volume is an assumption (`observability.logBytesPerJob`, `logMibPerPodDay`);
* not included: data transfer and NAT data processing per GB, Container Insights observations
  (no sourced price), ECR storage, backups beyond the free allowance.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from stack.model.capacity import capacity_report
from stack.model.observability import metrics_usage, observability_usage
from stack.config.model import KUBERNETES_STANDARD_SUPPORT_ENDS, StackConfig
from stack.model.prices import HOURS_PER_MONTH, MissingPriceError, PriceBook, bundled_price_book

ALB_LCU_ASSUMED = 1.0
"""Average LCUs the ALB is assumed to process (one LCU: 25 new connections/s, 3000 active
connections/min, 1 GB/h processed or 1000 rule evaluations/s)."""


@dataclass(frozen=True)
class CostItem:
    category: str
    item: str
    quantity: float
    unit: str
    unit_usd: float
    monthly_usd: float
    monthly_usd_at_max: float
    note: str = ""
    monthly_usd_at_min: float | None = None
    """None: the same as `monthly_usd` (the item does not scale)."""

    @property
    def scaled_in_usd(self) -> float:
        return self.monthly_usd if self.monthly_usd_at_min is None else self.monthly_usd_at_min

    def as_json(self) -> dict[str, object]:
        return {
            "category": self.category,
            "item": self.item,
            "quantity": self.quantity,
            "unit": self.unit,
            "unitUsd": self.unit_usd,
            "monthlyUsd": round(self.monthly_usd, 2),
            "monthlyUsdAtMax": round(self.monthly_usd_at_max, 2),
            "monthlyUsdAtMin": round(self.scaled_in_usd, 2),
            "note": self.note,
        }


@dataclass(frozen=True)
class CostEstimate:
    items: list[CostItem]
    as_of: date
    price_source: str
    notes: list[str] = field(default_factory=list)

    @property
    def monthly_usd(self) -> float:
        return round(sum(i.monthly_usd for i in self.items), 2)

    @property
    def monthly_usd_at_max(self) -> float:
        return round(sum(i.monthly_usd_at_max for i in self.items), 2)

    @property
    def monthly_usd_at_min(self) -> float:
        return round(sum(i.scaled_in_usd for i in self.items), 2)

    def category_usd(self, category: str) -> float:
        return round(sum(i.monthly_usd for i in self.items if i.category == category), 2)

    def as_json(self) -> dict[str, object]:
        return {
            "monthlyUsd": self.monthly_usd,
            "monthlyUsdAtMax": self.monthly_usd_at_max,
            "monthlyUsdAtMin": self.monthly_usd_at_min,
            "priceDate": self.as_of.isoformat(),
            "priceSource": self.price_source,
            "items": [i.as_json() for i in self.items],
            "notes": list(self.notes),
        }


DAYS_PER_MONTH = HOURS_PER_MONTH / 24
PUTS_PER_JOB = 2
"""The upload (web) and the result (worker)."""
GETS_PER_JOB = 2
"""The worker reads the upload; the client downloads the result once (presigned)."""


@dataclass(frozen=True)
class S3Usage:
    gb_month: float
    put_requests: float
    get_requests: float


def s3_usage(config: StackConfig) -> S3Usage:
    """A month of the files bucket at steady state: every day's files kept for the retention.

    S3 bills GB as 2^30 bytes; the lifecycle backstop's extra day is not counted, since the
    app's expiry deletes files at the retention.
    """
    s3 = config.storage
    daily_gib = s3.jobs_per_day * (s3.average_upload_mib + s3.average_result_mib) / 1024
    jobs_per_month = s3.jobs_per_day * DAYS_PER_MONTH
    return S3Usage(
        gb_month=daily_gib * s3.retention_days,
        put_requests=jobs_per_month * PUTS_PER_JOB,
        get_requests=jobs_per_month * GETS_PER_JOB,
    )


def in_extended_support(version: str, on: date) -> bool:
    """Whether EKS bills the extended-support rate for `version` on a date."""
    ends = KUBERNETES_STANDARD_SUPPORT_ENDS.get(version)
    if ends is None:
        raise MissingPriceError(f"standard support end of Kubernetes {version}", KUBERNETES_STANDARD_SUPPORT_ENDS)
    return on > date.fromisoformat(ends)


def _hourly(category: str, item: str, count: float, unit: str, usd: float, note: str = "") -> CostItem:
    monthly = count * usd * HOURS_PER_MONTH
    return CostItem(category, item, count, unit, usd, monthly, monthly, note)


def monthly_cost(config: StackConfig, prices: PriceBook | None = None) -> CostEstimate:
    """Itemized monthly cost. Raises MissingPriceError for an item without a price."""
    prices = prices or bundled_price_book()
    items: list[CostItem] = []
    notes: list[str] = []

    version = config.cluster.version
    support_type = config.cluster.support_type
    past_standard = in_extended_support(version, prices.as_of)
    # The support policy decides the rate, not the date alone: an EXTENDED cluster past its
    # standard-support end bills the extended rate; a STANDARD one is upgraded by EKS instead
    # (and keeps the standard rate), which the plan warns about.
    extended = past_standard and support_type == "EXTENDED"
    items.append(
        _hourly(
            "eks",
            f"EKS control plane (Kubernetes {version}, "
            f"{'extended' if extended else 'standard'} support)",
            1,
            "cluster-hour",
            prices.service(
                "eks_control_plane_extended_support" if extended else "eks_control_plane_standard"
            ),
            f"support policy {support_type}; standard support ends "
            f"{KUBERNETES_STANDARD_SUPPORT_ENDS[version]}",
        )
    )
    if past_standard and support_type == "STANDARD":
        notes.append(
            f"cluster.supportType: STANDARD, and Kubernetes {version}'s standard support ended "
            f"{KUBERNETES_STANDARD_SUPPORT_ENDS[version]}: EKS upgrades the control plane to the "
            "next version on its own; raise cluster.version (node groups and add-ons follow), "
            "or set supportType EXTENDED to keep it at the extended-support rate"
        )

    ebs_gb_month = prices.service("ebs_gp3")
    capacity = capacity_report(config)
    for name, pool in config.node_pools.items():
        scaled = capacity.pool(name)
        low, high = scaled.nodes_at_min, scaled.nodes_at_max
        hourly = prices.ec2_hourly(pool.instance_type)
        spot = pool.capacity_type == "SPOT"
        note = "SPOT: on-demand price, an upper bound" if spot else ""
        items.append(
            CostItem(
                "nodes",
                f"node pool {name}: {pool.instance_type} x {pool.desired_size} (max {pool.max_size})",
                pool.desired_size,
                "node-hour",
                hourly,
                pool.desired_size * hourly * HOURS_PER_MONTH,
                high * hourly * HOURS_PER_MONTH,
                note,
                low * hourly * HOURS_PER_MONTH,
            )
        )
        items.append(
            CostItem(
                "storage",
                f"node pool {name}: gp3 root volumes {pool.disk_size_gib} GiB x {pool.desired_size}",
                pool.desired_size * pool.disk_size_gib,
                "GB-month",
                ebs_gb_month,
                pool.desired_size * pool.disk_size_gib * ebs_gb_month,
                high * pool.disk_size_gib * ebs_gb_month,
                monthly_usd_at_min=low * pool.disk_size_gib * ebs_gb_month,
            )
        )
        if spot:
            notes.append(
                f"nodePools.{name} is SPOT; no spot price is bundled, so its on-demand price "
                "is an upper bound"
            )

    nat_count = 1 if config.network.nat_gateways == "single" else config.network.az_count
    items.append(
        _hourly(
            "network",
            f"NAT gateways ({config.network.nat_gateways})",
            nat_count,
            "gateway-hour",
            prices.service("nat_gateway"),
            "data processed per GB not included",
        )
    )
    ipv4 = prices.service("public_ipv4")
    items.append(_hourly("network", "public IPv4 addresses of the NAT gateways", nat_count, "address-hour", ipv4))

    items.append(_hourly("load balancer", "Application Load Balancer", 1, "alb-hour", prices.service("alb")))
    items.append(
        _hourly(
            "load balancer",
            "ALB capacity units (assumed)",
            ALB_LCU_ASSUMED,
            "lcu-hour",
            prices.service("alb_lcu"),
            f"assumption: {ALB_LCU_ASSUMED:g} LCU on average",
        )
    )
    items.append(
        _hourly(
            "load balancer",
            "public IPv4 addresses of the ALB (one per AZ)",
            config.network.az_count,
            "address-hour",
            ipv4,
            "assumption: internet-facing, one address per AZ",
        )
    )

    redis_nodes = 1 + config.redis.replicas
    engine = "Valkey" if config.redis.engine == "valkey" else "Redis OSS"
    items.append(
        _hourly(
            "redis",
            f"ElastiCache {engine} {config.redis.version} {config.redis.node_type} x {redis_nodes} "
            f"(primary + {config.redis.replicas} replicas)",
            redis_nodes,
            "node-hour",
            prices.elasticache_hourly(config.redis.node_type, config.redis.engine),
        )
    )

    db = config.database
    deployment = "Multi-AZ" if db.multi_az else "Single-AZ"
    items.append(
        _hourly(
            "database",
            f"RDS PostgreSQL {db.instance_class} {deployment}",
            1,
            "instance-hour",
            prices.rds_hourly(db.instance_class, db.multi_az),
            "Multi-AZ bills the standby too (x2)" if db.multi_az else "",
        )
    )
    storage_rate = prices.service("rds_gp3_storage_multi_az" if db.multi_az else "rds_gp3_storage_single_az")
    items.append(
        CostItem(
            "database",
            f"RDS gp3 storage {db.storage_gib} GiB ({deployment})",
            db.storage_gib,
            "GB-month",
            storage_rate,
            db.storage_gib * storage_rate,
            db.storage_gib * storage_rate,
        )
    )

    usage = s3_usage(config)
    s3 = config.storage
    assumption = (
        f"assumption: {s3.jobs_per_day:,} jobs/day x ({s3.average_upload_mib:g} + "
        f"{s3.average_result_mib:g}) MiB, kept {s3.retention_days} days"
    )
    # An app that does not use the bucket stores nothing in it (app.usesFilesBucket).
    files = config.app is None or config.app.uses_files_bucket
    for item, quantity, unit, price in (
        ("S3 files bucket: Standard storage", usage.gb_month, "GB-month", "s3_standard_storage"),
        ("S3 files bucket: PUT requests", usage.put_requests / 1000, "1000-requests", "s3_put_requests"),
        ("S3 files bucket: GET requests", usage.get_requests / 1000, "1000-requests", "s3_get_requests"),
    ) if files else ():
        usd = prices.service(price)
        items.append(CostItem("s3", item, quantity, unit, usd, quantity * usd, quantity * usd, assumption))

    if config.observability.enabled:
        notes += observability_items(config, prices, items)

    notes += [
        f"a month is {HOURS_PER_MONTH} hours; node pools at desired size; 'scaled in' and 'scaled out': "
        "the nodes the Cluster Autoscaler keeps with every workload at its minimum or maximum "
        "replicas, within minSize..maxSize",
        *(
            [f"S3: {assumption.removeprefix('assumption: ')}; per job {PUTS_PER_JOB} PUTs (upload, "
             f"result) and {GETS_PER_JOB} GETs (the worker's read, one result download); DELETEs are free"]
            if files else []
        ),
        f"ALB LCUs assumed: {ALB_LCU_ASSUMED:g}",
        "not included: data transfer, NAT data processing, ECR storage, extra backups",
    ]
    return CostEstimate(items=items, as_of=prices.as_of, price_source=prices.source, notes=notes)


def observability_items(config: StackConfig, prices: PriceBook, items: list[CostItem]) -> list[str]:
    """The container logs (ingested and stored), the alarms and the dashboard; returns the notes."""
    usage = observability_usage(config)
    logs = usage.assumption
    for item, quantity, unit, price, note in (
        ("CloudWatch Logs: container logs ingested", usage.log_gib_per_day * DAYS_PER_MONTH, "GB", "cloudwatch_logs_ingestion", logs),
        ("CloudWatch Logs: container logs stored", usage.log_gib_stored, "GB-month", "cloudwatch_logs_storage", logs),
        (
            f"CloudWatch alarms: {usage.alarms} alarms",
            usage.alarm_metrics,
            "alarm-metric-month",
            "cloudwatch_alarm_standard",
            "standard resolution; a metric math alarm counts each metric",
        ),
        ("CloudWatch dashboard", usage.dashboards, "dashboard-month", "cloudwatch_dashboard", ""),
    ):
        usd = prices.service(price)
        items.append(CostItem("observability", item, quantity, unit, usd, quantity * usd, quantity * usd, note))
    return [
        f"logs: {logs.removeprefix('assumption: ')}; each day's logs kept for the retention (GiB, as written)",
        "not priced: Container Insights with enhanced observability (billed per observation; no sourced "
        "price was found), SNS notifications, the CloudWatch free tier (10 alarm metrics, 3 dashboards per "
        "account)",
        *(metrics_items(config, prices, items) if config.observability.metrics_enabled else []),
    ]


def metrics_items(config: StackConfig, prices: PriceBook, items: list[CostItem]) -> list[str]:
    """The app's metrics in Amazon Managed Service for Prometheus: samples collected by the managed
    collector and ingested, the collector's hours, storage; returns the notes. The prices are
    low-confidence third-party copies of the pricing page (data/SOURCES.md)."""
    usage = metrics_usage(config)
    samples = usage.samples_per_month / 1e7
    for item, quantity, unit, price, note in (
        ("Managed Prometheus: samples ingested", samples, "10M-samples", "amp_samples_ingested", usage.assumption),
        ("Managed Prometheus: managed collector", usage.collector_hours, "collector-hour", "amp_collector_hour",
         "one collector, on all month whatever the load"),
        ("Managed Prometheus: samples collected", samples, "10M-samples", "amp_samples_collected", ""),
        ("Managed Prometheus: samples stored", usage.stored_gib, "GB-month", "amp_storage",
         "the workspace's retention, at steady state"),
    ):
        usd = prices.service(price)
        items.append(CostItem("observability", item, quantity, unit, usd, quantity * usd, quantity * usd, note))
    return [
        f"app metrics (Amazon Managed Service for Prometheus): {usage.assumption.removeprefix('assumption: ')}; "
        "prices from third-party copies of the pricing page (low confidence, data/SOURCES.md)",
        "not priced: Managed Prometheus queries ($0.10 per billion samples processed, by the alert rules every "
        "minute and by make measure: volume not estimated), the collector's network interfaces, the free tier "
        "(40 M samples ingested and 10 GB stored a month)",
    ]


def stack_estimates(config: StackConfig) -> dict[str, object]:
    """Plain JSON values for the stack outputs, so that previews show cost and node changes.

    Never raises for a missing price: the cost is then None and `costError` says why.
    """
    capacity = capacity_report(config)
    result: dict[str, object] = {
        "nodesNeeded": {p.pool: p.nodes_needed for p in capacity.pools},
        "nodesNeededAtMax": {p.pool: p.nodes_needed_at_max for p in capacity.pools},
        "nodesAtMin": {p.pool: p.nodes_at_min for p in capacity.pools},
    }
    try:
        estimate = monthly_cost(config)
    except MissingPriceError as e:
        result.update(
            {"monthlyCostUsd": None, "monthlyCostAtMaxUsd": None, "monthlyCostAtMinUsd": None, "costError": str(e)}
        )
        return result
    result.update(
        {
            "monthlyCostUsd": estimate.monthly_usd,
            "monthlyCostAtMaxUsd": estimate.monthly_usd_at_max,
            "monthlyCostAtMinUsd": estimate.monthly_usd_at_min,
            "priceDate": estimate.as_of.isoformat(),
        }
    )
    return result
