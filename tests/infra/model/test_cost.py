from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from stack.config.model import StackConfig
from stack.model.cost import in_extended_support, monthly_cost, stack_estimates
from stack.model.prices import MissingPriceError, bundled_price_book
from tests.infra.support.configs import small_config


def test_small_config_monthly_cost_by_hand() -> None:
    estimate = monthly_cost(small_config())
    by_item = {i.item: round(i.monthly_usd, 3) for i in estimate.items}
    # 730 hours a month, bundled us-east-1 prices:
    #   EKS control plane, standard support   0.10   x 730            =  73.00
    #   1 x m4.large                           0.10   x 730            =  73.00
    #   gp3 root volume 20 GB                  0.08   x 20             =   1.60
    #   1 NAT gateway (single)                 0.045  x 730            =  32.85
    #   its public IPv4 address                0.005  x 730            =   3.65
    #   ALB                                    0.0225 x 730            =  16.425
    #   1 LCU (assumption)                     0.008  x 730            =   5.84
    #   ALB public IPv4, one per AZ (2)        0.005  x 730 x 2        =   7.30
    #   cache.t4g.micro x 1, Valkey            0.0128 x 730            =   9.344
    #   db.t4g.micro Single-AZ                 0.016  x 730            =  11.68
    #   RDS gp3 storage 20 GB                  0.115  x 20             =   2.30
    #   S3 storage: 1000 jobs/day x 3 MiB x 7 days / 1024 = 20.5078 GB
    #                                          0.023  x 20.5078        =   0.472
    #   S3 PUTs: 1000 x 2 x 730/24 = 60,833    0.005  x 60.833         =   0.304
    #   S3 GETs: the same count                0.0004 x 60.833         =   0.024
    #   logs a day: 1000 jobs x 4096 B + 2 pods x 10 MiB = 25,067,520 B = 0.023346 GiB
    #   logs ingested: 0.023346 x 730/24 = 0.71011 GB   0.50    x 0.71011 =   0.355
    #   logs stored: 0.023346 x 14 days = 0.32684 GB   0.03    x 0.32684 =   0.010
    #   9 alarms, 11 alarm metrics (the 5xx rate reads 3)  0.10 x 11   =   1.10
    #   the dashboard                                              3.00 =   3.00
    #   app metrics: 2 pods x 400 series x 2 scrapes a minute = 1600 samples/min,
    #     x 60 x 730 = 70,080,000 samples a month = 7.008 x 10M
    #   samples ingested                       0.90   x 7.008          =   6.307
    #   the managed collector                  0.04   x 730            =  29.20
    #   samples collected                      0.03   x 7.008          =   0.210
    #   stored: 1600 x 60 x 24 x 150 days x 2 B = 0.64373 GiB
    #                                          0.03   x 0.64373        =   0.019
    #                                                           total  = 277.990
    assert by_item == {
        "EKS control plane (Kubernetes 1.35, standard support)": 73.0,
        "node pool default: m4.large x 1 (max 2)": 73.0,
        "node pool default: gp3 root volumes 20 GiB x 1": 1.6,
        "NAT gateways (single)": 32.85,
        "public IPv4 addresses of the NAT gateways": 3.65,
        "Application Load Balancer": 16.425,
        "ALB capacity units (assumed)": 5.84,
        "public IPv4 addresses of the ALB (one per AZ)": 7.3,
        "ElastiCache Valkey 8.2 cache.t4g.micro x 1 (primary + 0 replicas)": 9.344,
        "RDS PostgreSQL db.t4g.micro Single-AZ": 11.68,
        "RDS gp3 storage 20 GiB (Single-AZ)": 2.3,
        "S3 files bucket: Standard storage": 0.472,
        "S3 files bucket: PUT requests": 0.304,
        "S3 files bucket: GET requests": 0.024,
        "CloudWatch Logs: container logs ingested": 0.355,
        "CloudWatch Logs: container logs stored": 0.01,
        "CloudWatch alarms: 9 alarms": 1.1,
        "CloudWatch dashboard": 3.0,
        "Managed Prometheus: samples ingested": 6.307,
        "Managed Prometheus: managed collector": 29.2,
        "Managed Prometheus: samples collected": 0.21,
        "Managed Prometheus: samples stored": 0.019,
    }
    assert estimate.monthly_usd == pytest.approx(277.990, abs=0.006)
    # At max size the pool has 2 nodes: one more m4.large (73.00) and volume (1.60).
    assert estimate.monthly_usd_at_max == pytest.approx(277.990 + 74.6, abs=0.006)
    assert estimate.as_of == date(2026, 8, 20)


def test_the_files_bucket_is_priced_from_jobs_sizes_and_retention() -> None:
    config = small_config(
        storage={"jobsPerDay": 2400, "averageUploadMib": 4, "averageResultMib": 2, "retentionDays": 30}
    )
    s3 = {i.item: i for i in monthly_cost(config).items if i.category == "s3"}
    # 2400 jobs/day x 6 MiB = 14.0625 GiB a day, kept 30 days: 421.875 GB-month x 0.023 = 9.703
    storage = s3["S3 files bucket: Standard storage"]
    assert (storage.quantity, storage.unit) == (pytest.approx(421.875), "GB-month")
    assert storage.monthly_usd == pytest.approx(9.703125)
    # 2400 jobs/day x 730/24 days = 73,000 jobs; 2 PUTs and 2 GETs each: 146 thousand of each.
    puts = s3["S3 files bucket: PUT requests"]
    assert (puts.quantity, puts.unit) == (pytest.approx(146), "1000-requests")
    assert puts.monthly_usd == pytest.approx(0.73)
    assert s3["S3 files bucket: GET requests"].monthly_usd == pytest.approx(0.0584)
    assert "2,400 jobs/day x (4 + 2) MiB, kept 30 days" in storage.note
    # Retention drives storage only; a week is 7/30 of it.
    week = monthly_cost(small_config(storage={"jobsPerDay": 2400, "averageUploadMib": 4, "averageResultMib": 2}))
    assert next(i for i in week.items if i.item == storage.item).monthly_usd == pytest.approx(9.703125 * 7 / 30)


def test_an_app_that_does_not_use_the_bucket_pays_nothing_for_it() -> None:
    app = {"settingsModule": "notes.settings", "wsgi": "notes.wsgi:application", "celery": "notes"}
    storage = {"jobsPerDay": 2400, "averageUploadMib": 4, "averageResultMib": 2}
    without = monthly_cost(small_config(storage=storage, app=app, jobs=None))
    assert [i for i in without.items if i.category == "s3"] == []
    assert not [n for n in without.notes if n.startswith("S3")]
    with_bucket = monthly_cost(small_config(storage=storage, app={**app, "usesFilesBucket": True}, jobs=None))
    assert len([i for i in with_bucket.items if i.category == "s3"]) == 3
    assert without.monthly_usd < with_bucket.monthly_usd


def test_multi_az_database_bills_the_standby_and_per_az_nat() -> None:
    config = small_config(
        network={"azCount": 3, "natGateways": "perAz"},
        database={"instanceClass": "db.t4g.micro", "storageGib": 50, "multiAz": True},
        redis={"nodeType": "cache.t3.medium", "replicas": 1},
    )
    by_item = {i.item: round(i.monthly_usd, 2) for i in monthly_cost(config).items}
    assert by_item["RDS PostgreSQL db.t4g.micro Multi-AZ"] == 23.36  # 0.032 x 730
    assert by_item["RDS gp3 storage 50 GiB (Multi-AZ)"] == 11.5  # 0.23 x 50
    assert by_item["NAT gateways (perAz)"] == 98.55  # 3 x 0.045 x 730
    assert by_item["public IPv4 addresses of the NAT gateways"] == 10.95
    assert by_item["ElastiCache Valkey 8.2 cache.t3.medium x 2 (primary + 1 replicas)"] == 79.42  # 2 x 0.0544 x 730


def test_extended_support_after_the_standard_support_end() -> None:
    # 1.33's standard support ends 2026-07-29, before the bundled prices' date.
    assert in_extended_support("1.33", date(2026, 8, 20))
    assert not in_extended_support("1.33", date(2026, 7, 29))
    extended = {"version": "1.33", "supportType": "EXTENDED"}
    estimate = monthly_cost(small_config(cluster=extended))
    eks = estimate.items[0]
    assert eks.item == "EKS control plane (Kubernetes 1.33, extended support)"
    assert eks.monthly_usd == pytest.approx(438.0)  # 0.60 x 730
    assert not [n for n in estimate.notes if n.startswith("cluster.supportType")]
    book = replace(bundled_price_book(), as_of=date(2026, 1, 1))
    assert monthly_cost(small_config(cluster=extended), book).items[0].monthly_usd == pytest.approx(73.0)


def test_a_standard_support_cluster_past_its_end_is_priced_standard_and_warned() -> None:
    estimate = monthly_cost(small_config(cluster={"version": "1.33", "supportType": "STANDARD"}))
    eks = estimate.items[0]
    assert eks.item == "EKS control plane (Kubernetes 1.33, standard support)"
    assert eks.monthly_usd == pytest.approx(73.0)  # 0.10 x 730
    (warning,) = [n for n in estimate.notes if n.startswith("cluster.supportType")]
    assert "ended 2026-07-29" in warning and "upgrades the control plane" in warning
    # Within standard support there is nothing to warn about.
    current = monthly_cost(small_config(cluster={"version": "1.35", "supportType": "STANDARD"}))
    assert not [n for n in current.notes if n.startswith("cluster.supportType")]


def test_spot_pools_are_priced_on_demand_as_an_upper_bound() -> None:
    config = small_config(
        nodePools={"default": {"instanceType": "m4.large", "desiredSize": 1, "maxSize": 2, "capacityType": "SPOT"}}
    )
    estimate = monthly_cost(config)
    node = next(i for i in estimate.items if i.category == "nodes")
    assert node.monthly_usd == pytest.approx(73.0)
    assert "upper bound" in node.note
    assert any("nodePools.default is SPOT" in n for n in estimate.notes)


def test_an_unpriced_database_class_is_not_guessed() -> None:
    config = small_config(database={"instanceClass": "db.m6g.large", "storageGib": 20})
    with pytest.raises(MissingPriceError) as caught:
        monthly_cost(config)
    message = str(caught.value)
    assert "rds_postgres_db.m6g.large_single_az" in message
    assert "rds_postgres_db.t4g.micro_single_az" in message  # the known ones are listed


def test_stack_estimates_are_plain_json_values() -> None:
    estimates = stack_estimates(small_config())
    # The system pods (KEDA, the Cluster Autoscaler and the CloudWatch add-on's operator
    # included, 900m), web 250m and worker 500m need 1650m, more than the 1480m an m4.large has
    # after the DaemonSets: two nodes at the minimum as at the maximum, one more than the
    # configured desiredSize (the configured cost: $277.99, one node: test_small_config_monthly_cost_by_hand).
    # A node is $74.60 (73 + its 20 GiB disk).
    assert estimates == {
        "nodesNeeded": {"default": 2},
        "nodesNeededAtMax": {"default": 2},
        "nodesAtMin": {"default": 2},
        "monthlyCostUsd": pytest.approx(277.99, abs=0.01),
        "monthlyCostAtMaxUsd": pytest.approx(277.99 + 74.60, abs=0.01),
        "monthlyCostAtMinUsd": pytest.approx(277.99 + 74.60, abs=0.01),
        "priceDate": "2026-08-20",
    }


def test_scaled_in_cost_counts_the_nodes_the_minimum_replicas_need() -> None:
    # Workers may scale to zero on a pool that may scale to zero: scaled in, that pool costs
    # nothing; scaled out, it has the nodes its maximum replicas need, not maxSize.
    config = small_config(
        network={"azCount": 3, "natGateways": "perAz"},
        nodePools={
            "web": {"instanceType": "m5.large", "minSize": 1, "desiredSize": 2, "maxSize": 3},
            "workers": {
                "instanceType": "c5.large",
                "minSize": 0,
                "desiredSize": 1,
                "maxSize": 6,
                "taints": [{"key": "workload", "value": "worker", "effect": "NoSchedule"}],
            },
        },
        web={"nodePool": "web", "replicas": 2, "cpuMillicores": 500, "memoryMib": 512,
             "autoscaling": {"minReplicas": 2, "maxReplicas": 2}},
        worker={"nodePool": "workers", "replicas": 1, "cpuMillicores": 850, "memoryMib": 768,
                "autoscaling": {"minReplicas": 0, "maxReplicas": 4}},
    )
    items = {i.item: i for i in monthly_cost(config).items}
    workers = items["node pool workers: c5.large x 1 (max 6)"]
    # c5.large 0.085 $/h; one 850m worker per node (1480m after the DaemonSets, the CloudWatch
    # agent and Fluent Bit included): 4 need 4.
    assert workers.scaled_in_usd == 0
    assert workers.monthly_usd == pytest.approx(0.085 * 730)
    assert workers.monthly_usd_at_max == pytest.approx(4 * 0.085 * 730)
    web = items["node pool web: m5.large x 2 (max 3)"]
    # Web's two pods and the system pods (1000m + 900m > 1480m) need 2 nodes at min as at max.
    assert web.scaled_in_usd == pytest.approx(2 * 0.096 * 730)
    estimate = monthly_cost(config)
    assert estimate.monthly_usd_at_min < estimate.monthly_usd < estimate.monthly_usd_at_max


def test_stack_estimates_report_a_missing_price_instead_of_failing() -> None:
    estimates = stack_estimates(small_config(database={"instanceClass": "db.m6g.large", "storageGib": 20}))
    assert estimates["monthlyCostUsd"] is None
    assert "db.m6g.large" in str(estimates["costError"])


def test_the_cache_is_priced_for_its_engine() -> None:
    """Valkey nodes have their own rows (node-based Valkey is priced 20% below Redis OSS,
    data/SOURCES.md); the engine the stack deploys is the one priced."""
    valkey = small_config()  # the default engine
    redis = small_config(redis={"nodeType": "cache.t4g.micro", "replicas": 0, "engine": "redis", "engineVersion": "7.1"})

    def cache_item(config: StackConfig) -> tuple[str, float]:
        (item,) = [i for i in monthly_cost(config).items if i.category == "redis"]
        return item.item, item.monthly_usd

    assert cache_item(valkey) == ("ElastiCache Valkey 8.2 cache.t4g.micro x 1 (primary + 0 replicas)",
                                  pytest.approx(0.0128 * 730))
    assert cache_item(redis) == ("ElastiCache Redis OSS 7.1 cache.t4g.micro x 1 (primary + 0 replicas)",
                                 pytest.approx(0.016 * 730))
    book = bundled_price_book()
    for node_type in ("cache.t3.micro", "cache.t4g.micro", "cache.t3.medium", "cache.m5.large"):
        assert book.elasticache_hourly(node_type, "valkey") == pytest.approx(
            0.8 * book.elasticache_hourly(node_type, "redis"), abs=1e-6)
    with pytest.raises(MissingPriceError, match="elasticache_valkey_cache.m4.large"):
        book.elasticache_hourly("cache.m4.large", "valkey")
