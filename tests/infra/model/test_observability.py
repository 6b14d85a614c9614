"""What watching the stack costs and where its alarms fire (stack/model/observability.py): the
thresholds derived from the stack, the log volume from the stated assumption, and each alarm
metric billed once."""

from __future__ import annotations

import pytest

from stack.model.cost import monthly_cost
from stack.model.observability import alarm_specs, metrics_usage, observability_usage
from stack.model.prices import bundled_price_book
from tests.infra.support.configs import small_config


def test_thresholds_follow_the_stack_unless_set() -> None:
    config = small_config()
    assert config.web.timeout_seconds == 60
    specs = {s.name: s for s in alarm_specs(config)}
    assert specs["target-p99-latency"].threshold == 30
    # 20 GiB, 10% free.
    assert specs["database-free-storage"].threshold == 2 * 2**30
    web, worker = config.web, config.worker
    assert specs["database-connections"].threshold == (
        web.autoscaling.max_replicas * web.gunicorn_workers * web.threads + worker.autoscaling.max_replicas * worker.concurrency + 2
    )
    set_ = small_config(observability={"thresholds": {"targetP99Seconds": 2, "databaseConnections": 50}})
    specs = {s.name: s for s in alarm_specs(set_)}
    assert (specs["target-p99-latency"].threshold, specs["database-connections"].threshold) == (2, 50)


def test_every_cache_node_has_its_memory_and_eviction_alarms() -> None:
    replicas = small_config(redis={"nodeType": "cache.t4g.micro", "replicas": 2})
    names = [s.name for s in alarm_specs(replicas) if s.name.startswith("cache-")]
    assert names == [f"cache-{n}-{kind}" for n in (1, 2, 3) for kind in ("memory", "evictions")]


def test_the_plan_prices_logs_alarms_and_the_dashboard() -> None:
    config = small_config(
        storage={"jobsPerDay": 2048},
        observability={"logBytesPerJob": 1024, "logMibPerPodDay": 512, "logRetentionDays": 30},
    )
    prices = bundled_price_book()
    items = {i.item: i for i in monthly_cost(config, prices).items if i.category == "observability"}
    # 2048 jobs x 1 KiB = 2 MiB, and 2 pods x 512 MiB: 1026 MiB a day.
    daily = 1026 / 1024
    ingested = items["CloudWatch Logs: container logs ingested"]
    assert abs(ingested.quantity - daily * 730 / 24) < 1e-9
    assert abs(ingested.monthly_usd - ingested.quantity * 0.50) < 1e-9
    assert abs(items["CloudWatch Logs: container logs stored"].quantity - daily * 30) < 1e-9
    usage = observability_usage(config)
    # The 5xx rate alarm watches 3 metrics: 3 alarm metrics; every other alarm 1.
    assert usage.alarm_metrics == usage.alarms + 2
    alarms = next(i for i in items.values() if i.unit == "alarm-metric-month")
    assert alarms.monthly_usd == usage.alarm_metrics * 0.10
    assert items["CloudWatch dashboard"].monthly_usd == 3.00
    assert "2,048 jobs/day x 1,024 B + 2 app pods x 512 MiB/day, kept 30 days" in ingested.note


def test_an_unwatched_stack_pays_for_none_of_it() -> None:
    off = monthly_cost(small_config(observability={"enabled": False}))
    on = monthly_cost(small_config())
    assert not [i for i in off.items if i.category == "observability"]
    assert abs(on.monthly_usd - off.monthly_usd - on.category_usd("observability")) < 0.015
    assert on.category_usd("observability") > 3


def test_the_plan_prices_the_app_metrics_from_their_volume() -> None:
    # 2 app pods x 100 series, a sample each per minute: 200 samples/min, 8,760,000 a month.
    config = small_config(observability={"metrics": {"seriesPerPod": 100, "scrapeIntervalSeconds": 60}})
    usage = metrics_usage(config)
    assert usage.pods == 2 and usage.samples_per_minute == 200
    assert usage.samples_per_month == 200 * 60 * 730
    # Kept 150 days at 2 bytes a sample.
    assert abs(usage.stored_gib - 200 * 60 * 24 * 150 * 2 / 2**30) < 1e-12
    # A shorter interval takes proportionally more samples.
    assert metrics_usage(small_config(observability={"metrics": {"seriesPerPod": 100}})).samples_per_minute == 400
    estimate = monthly_cost(config)
    notes = " ".join(estimate.notes)
    assert "100 series/pod x 2 app pods x 1 samples/min" in notes and "8.8 M samples/month" in notes
    assert "not priced: Managed Prometheus queries" in notes
    items = {i.item: i for i in estimate.items if "Prometheus" in i.item}
    # 8,760,000 samples = 0.876 x 10M: ingested at $0.90, collected at $0.03; the collector all month.
    assert items["Managed Prometheus: samples ingested"].monthly_usd == pytest.approx(0.876 * 0.90)
    assert items["Managed Prometheus: samples collected"].monthly_usd == pytest.approx(0.876 * 0.03)
    assert items["Managed Prometheus: managed collector"].monthly_usd == pytest.approx(730 * 0.04)
    assert items["Managed Prometheus: samples stored"].monthly_usd == pytest.approx(usage.stored_gib * 0.03)
    off = monthly_cost(small_config(observability={"metrics": {"enabled": False}}))
    assert "Prometheus" not in " ".join(off.notes)
    assert not [i for i in off.items if "Prometheus" in i.item]
