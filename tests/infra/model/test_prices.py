"""Live prices from the AWS Price List API, answered by botocore's Stubber."""

from __future__ import annotations

import json
from typing import Any

import botocore.session
import pytest
from botocore.stub import Stubber

from stack.model.prices import LivePricesError, live_price_book, live_queries, on_demand_usd


def price_list_entry(attributes: dict[str, str], usd: str, unit: str = "Hrs") -> str:
    """One PriceList entry as the API returns it: a JSON document in a string."""
    return json.dumps(
        {
            "product": {"productFamily": "Compute Instance", "attributes": attributes, "sku": "SKU1"},
            "serviceCode": "AmazonEC2",
            "terms": {
                "OnDemand": {
                    "SKU1.JRTCKXETXF": {
                        "priceDimensions": {
                            "SKU1.JRTCKXETXF.6YS6EN2CT7": {
                                "unit": unit,
                                "pricePerUnit": {"USD": usd},
                                "description": f"${usd} per On Demand Linux Instance Hour",
                            }
                        },
                        "sku": "SKU1",
                        "effectiveDate": "2026-08-01T00:00:00Z",
                    }
                }
            },
            "version": "20260801000000",
            "publicationDate": "2026-08-01T00:00:00Z",
        }
    )


def response(*entries: str) -> dict[str, Any]:
    return {"FormatVersion": "aws_v1", "PriceList": list(entries)}


def stubbed_client() -> Any:
    session = botocore.session.get_session()
    return session.create_client(
        "pricing", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )


def term(field: str, value: str) -> dict[str, str]:
    return {"Type": "TERM_MATCH", "Field": field, "Value": value}


def test_live_prices_overlay_the_bundled_ones() -> None:
    client = stubbed_client()
    queries = live_queries(
        region="us-east-1",
        instance_types=["m4.large"],
        cache_node_types=["cache.t4g.micro"],
        database=[("db.t4g.micro", True)],
    )
    with Stubber(client) as stub:
        stub.add_response(
            "get_products",
            response(price_list_entry({"instanceType": "m4.large"}, "0.1100000000")),
            {
                "ServiceCode": "AmazonEC2",
                "Filters": [
                    term("regionCode", "us-east-1"),
                    term("instanceType", "m4.large"),
                    term("operatingSystem", "Linux"),
                    term("tenancy", "Shared"),
                    term("preInstalledSw", "NA"),
                    term("capacitystatus", "Used"),
                ],
                "MaxResults": 100,
            },
        )
        stub.add_response(
            "get_products",
            response(price_list_entry({"instanceType": "cache.t4g.micro"}, "0.0170000000")),
            {
                "ServiceCode": "AmazonElastiCache",
                "Filters": [
                    term("regionCode", "us-east-1"),
                    term("instanceType", "cache.t4g.micro"),
                    term("cacheEngine", "Redis"),
                ],
                "MaxResults": 100,
            },
        )
        stub.add_response(
            "get_products",
            response(price_list_entry({"instanceType": "db.t4g.micro"}, "0.0330000000")),
            {
                "ServiceCode": "AmazonRDS",
                "Filters": [
                    term("regionCode", "us-east-1"),
                    term("instanceType", "db.t4g.micro"),
                    term("databaseEngine", "PostgreSQL"),
                    term("deploymentOption", "Multi-AZ"),
                ],
                "MaxResults": 100,
            },
        )
        # Both EKS prices come from one query (two pages), told apart by usage type.
        stub.add_response(
            "get_products",
            {
                **response(price_list_entry({"usagetype": "USE1-AmazonEKS-Hours:perCluster"}, "0.1000000000")),
                "NextToken": "page-2",
            },
            {"ServiceCode": "AmazonEKS", "Filters": [term("regionCode", "us-east-1")], "MaxResults": 100},
        )
        stub.add_response(
            "get_products",
            response(price_list_entry({"usagetype": "USE1-AmazonEKS-Hours:extendedSupport"}, "0.6000000000")),
            {
                "ServiceCode": "AmazonEKS",
                "Filters": [term("regionCode", "us-east-1")],
                "MaxResults": 100,
                "NextToken": "page-2",
            },
        )
        book, warnings = live_price_book(queries, client=client)
        stub.assert_no_pending_responses()
    assert warnings == []
    assert book.ec2_hourly("m4.large") == 0.11
    assert book.elasticache_hourly("cache.t4g.micro") == 0.017
    assert book.rds_hourly("db.t4g.micro", multi_az=True) == 0.033
    assert book.service("eks_control_plane_standard") == 0.1
    assert book.service("eks_control_plane_extended_support") == 0.6
    assert book.service("alb") == 0.0225  # not asked: stays bundled
    assert "Price List API" in book.source
    assert book.live_items == {
        "ec2 m4.large",
        "elasticache_redis_cache.t4g.micro",
        "rds_postgres_db.t4g.micro_multi_az",
        "eks_control_plane_standard",
        "eks_control_plane_extended_support",
    }


def test_an_unanswered_item_keeps_its_bundled_price_with_a_warning() -> None:
    client = stubbed_client()
    queries = live_queries(region="us-east-1", instance_types=["c5.large"], cache_node_types=[], database=[])
    with Stubber(client) as stub:
        stub.add_response("get_products", response())
        stub.add_response("get_products", response())
        book, warnings = live_price_book(queries, client=client)
    assert book.ec2_hourly("c5.large") == 0.085
    assert len(warnings) == 3
    assert "no on-demand price for ec2 c5.large" in warnings[0]


def test_api_errors_are_clear() -> None:
    client = stubbed_client()
    queries = live_queries(region="us-east-1", instance_types=["m4.large"], cache_node_types=[], database=[])
    with Stubber(client) as stub:
        stub.add_client_error("get_products", "AccessDeniedException", "not allowed", 400)
        with pytest.raises(LivePricesError, match="AmazonEC2.*AccessDenied"):
            live_price_book(queries, client=client)


def test_no_credentials_is_an_error_not_a_silent_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    client = botocore.session.Session().create_client("pricing", region_name="us-east-1")
    queries = live_queries(region="us-east-1", instance_types=["m4.large"], cache_node_types=[], database=[])
    with pytest.raises(LivePricesError, match="needs AWS credentials"):
        live_price_book(queries, client=client)


def test_on_demand_usd_skips_zero_prices_and_unmatched_products() -> None:
    entries = [
        price_list_entry({"usagetype": "other"}, "5.0"),
        price_list_entry({"usagetype": "wanted"}, "0.0000000000"),
        price_list_entry({"usagetype": "wanted"}, "0.25"),
    ]
    assert on_demand_usd(entries, lambda p: p["attributes"]["usagetype"] == "wanted") == 0.25
    assert on_demand_usd([]) is None


def test_valkey_nodes_are_asked_for_with_the_valkey_engine() -> None:
    """The price list files Valkey nodes under cacheEngine "Valkey" (usagetype NodeUsage:<type>,
    operation CreateCacheCluster:Valkey), apart from Redis OSS: each engine's item is asked for
    with its own engine, so a live Valkey price never comes from a Redis OSS product."""
    queries = live_queries(region="us-east-1", instance_types=[],
                           cache_node_types=[("cache.t4g.micro", "valkey"), ("cache.t4g.micro", "redis")], database=[])
    cache = {q.item: q.filters for q in queries if q.service_code == "AmazonElastiCache"}
    assert cache == {
        "elasticache_redis_cache.t4g.micro": [term("regionCode", "us-east-1"), term("instanceType", "cache.t4g.micro"),
                                              term("cacheEngine", "Redis")],
        "elasticache_valkey_cache.t4g.micro": [term("regionCode", "us-east-1"), term("instanceType", "cache.t4g.micro"),
                                               term("cacheEngine", "Valkey")],
    }
