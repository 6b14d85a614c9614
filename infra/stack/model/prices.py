"""Unit prices for the cost model: bundled with their date, or asked live from AWS.

Bundled prices come from `data/service-prices.csv` (managed services) and
`data/instance-catalog.csv` (EC2 on-demand); both name their sources in the file and in
`data/SOURCES.md`. They are us-east-1 on-demand prices.

A price that is not known is never guessed: `MissingPriceError` names the item and the items
that are known, so the stack can switch to a priced class or a sourced row can be added.

`live_price_book` asks the AWS Price List API (boto3 `pricing` client, endpoint region
us-east-1, `GetProducts`) for the EC2, ElastiCache, RDS and EKS prices a stack uses; the
remaining items (ALB, NAT, public IPv4, EBS, RDS storage) stay bundled and say so.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from functools import cache
from typing import TYPE_CHECKING, Any

from stack.config.catalog import DATA_DIR, instance_types

if TYPE_CHECKING:
    from mypy_boto3_pricing.client import PricingClient
    from mypy_boto3_pricing.type_defs import FilterTypeDef

BUNDLED_PRICES_AS_OF = date(2026, 8, 20)
"""When the bundled price files were last checked against their sources (data/SOURCES.md)."""

HOURS_PER_MONTH = 730

PRICING_API_REGION = "us-east-1"
"""The Price List API answers from us-east-1 (and a few others); prices cover every region."""


class MissingPriceError(KeyError):
    """A price the estimate needs is not in the price book."""

    def __init__(self, item: str, known: Iterable[str]) -> None:
        self.item = item
        self.known = sorted(known)
        super().__init__(item)

    def __str__(self) -> str:
        return (
            f"no price for {self.item!r}; it is not guessed. Known: {', '.join(self.known)}. "
            "Use a priced class or add a sourced row to data/service-prices.csv"
        )


class LivePricesError(RuntimeError):
    """The Price List API could not be asked (no credentials, no permission, no network)."""


@dataclass(frozen=True)
class PriceBook:
    """USD unit prices by item name, with their date and where they come from."""

    as_of: date
    source: str
    services: Mapping[str, float]
    instances: Mapping[str, float]
    live_items: frozenset[str] = field(default_factory=frozenset)

    def service(self, item: str) -> float:
        try:
            return self.services[item]
        except KeyError:
            raise MissingPriceError(item, self.services) from None

    def ec2_hourly(self, instance_type: str) -> float:
        try:
            return self.instances[instance_type]
        except KeyError:
            raise MissingPriceError(f"ec2 {instance_type}", self.instances) from None

    def elasticache_hourly(self, node_type: str, engine: str = "redis") -> float:
        """Node-hours of an ElastiCache node of `engine` (valkey or redis): priced per engine."""
        return self._one_of(f"elasticache_{engine}_{node_type}", f"elasticache_{engine}_")

    def rds_hourly(self, instance_class: str, multi_az: bool) -> float:
        """Instance-hours of a PostgreSQL instance; Multi-AZ bills the standby too."""
        single = f"rds_postgres_{instance_class}_single_az"
        multi = f"rds_postgres_{instance_class}_multi_az"
        if multi_az and multi in self.services:
            return self.services[multi]
        if single in self.services:
            return self.services[single] * (2 if multi_az else 1)
        return self._one_of(multi if multi_az else single, "rds_postgres_")

    def _one_of(self, item: str, prefix: str) -> float:
        if item in self.services:
            return self.services[item]
        raise MissingPriceError(item, [k for k in self.services if k.startswith(prefix)])


@cache
def _bundled_services() -> dict[str, float]:
    with (DATA_DIR / "service-prices.csv").open(newline="") as f:
        return {row["item"]: float(row["usd_us_east_1"]) for row in csv.DictReader(f)}


def bundled_price_book() -> PriceBook:
    return PriceBook(
        as_of=BUNDLED_PRICES_AS_OF,
        source=f"bundled (data/service-prices.csv, data/instance-catalog.csv; "
        f"{BUNDLED_PRICES_AS_OF.isoformat()})",
        services=dict(_bundled_services()),
        instances={name: it.usd_per_hour for name, it in instance_types().items()},
    )


# --- AWS Price List API ---------------------------------------------------------------------


def _term(field_name: str, value: str) -> FilterTypeDef:
    return {"Type": "TERM_MATCH", "Field": field_name, "Value": value}


def on_demand_usd(
    price_list: Iterable[str], match: Callable[[dict[str, Any]], bool] = lambda _: True
) -> float | None:
    """The first non-zero on-demand USD unit price among the products `match` accepts.

    Each PriceList entry is a JSON document (a string) with `product` and `terms.OnDemand`.
    """
    for entry in price_list:
        doc = json.loads(entry)
        if not match(doc.get("product", {})):
            continue
        for term in doc.get("terms", {}).get("OnDemand", {}).values():
            for dimension in term.get("priceDimensions", {}).values():
                usd = float(dimension.get("pricePerUnit", {}).get("USD", "0"))
                if usd > 0:
                    return usd
    return None


def _products(client: PricingClient, service_code: str, filters: list[FilterTypeDef]) -> list[str]:
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    entries: list[str] = []
    token: str | None = None
    try:
        while True:
            if token:
                page = client.get_products(
                    ServiceCode=service_code, Filters=filters, MaxResults=100, NextToken=token
                )
            else:
                page = client.get_products(ServiceCode=service_code, Filters=filters, MaxResults=100)
            entries += page.get("PriceList", [])
            token = page.get("NextToken")
            if not token:
                return entries
    except NoCredentialsError:
        raise LivePricesError(
            "--live-prices needs AWS credentials (any identity allowed pricing:GetProducts); "
            "none were found. Run without --live-prices to use the bundled prices of "
            f"{BUNDLED_PRICES_AS_OF.isoformat()}"
        ) from None
    except (ClientError, BotoCoreError) as e:
        raise LivePricesError(f"the AWS Price List API failed for {service_code}: {e}") from None


def pricing_client() -> PricingClient:
    import boto3

    return boto3.client("pricing", region_name=PRICING_API_REGION)


@dataclass(frozen=True)
class LiveQuery:
    """One price to ask for: the price book item it fills and how to find it."""

    item: str
    service_code: str
    filters: list[FilterTypeDef]
    match: Callable[[dict[str, Any]], bool] = lambda _: True


CACHE_ENGINE_PRICE_LIST_NAMES = {"redis": "Redis", "valkey": "Valkey"}


def _usage_type_endswith(suffix: str) -> Callable[[dict[str, Any]], bool]:
    return lambda product: str(product.get("attributes", {}).get("usagetype", "")).endswith(suffix)


def live_queries(
    *,
    region: str,
    instance_types: Iterable[str],
    cache_node_types: Iterable[str | tuple[str, str]],
    database: Iterable[tuple[str, bool]],
) -> list[LiveQuery]:
    """The GetProducts queries for a stack's EC2, ElastiCache, RDS and EKS prices."""
    queries: list[LiveQuery] = []
    for itype in sorted(set(instance_types)):
        queries.append(
            LiveQuery(
                f"ec2 {itype}",
                "AmazonEC2",
                [
                    _term("regionCode", region),
                    _term("instanceType", itype),
                    _term("operatingSystem", "Linux"),
                    _term("tenancy", "Shared"),
                    _term("preInstalledSw", "NA"),
                    _term("capacitystatus", "Used"),
                ],
            )
        )
    # (node type, engine) pairs; a bare node type is a Redis OSS node.
    cache_nodes = {(n, "redis") if isinstance(n, str) else n for n in cache_node_types}
    for node_type, engine in sorted(cache_nodes):
        queries.append(
            LiveQuery(
                f"elasticache_{engine}_{node_type}",
                "AmazonElastiCache",
                [
                    _term("regionCode", region),
                    _term("instanceType", node_type),
                    # The price list's cacheEngine values: "Redis", "Valkey", "Memcached".
                    _term("cacheEngine", CACHE_ENGINE_PRICE_LIST_NAMES[engine]),
                ],
            )
        )
    for instance_class, multi_az in sorted(set(database)):
        deployment = "Multi-AZ" if multi_az else "Single-AZ"
        queries.append(
            LiveQuery(
                f"rds_postgres_{instance_class}_{'multi' if multi_az else 'single'}_az",
                "AmazonRDS",
                [
                    _term("regionCode", region),
                    _term("instanceType", instance_class),
                    _term("databaseEngine", "PostgreSQL"),
                    _term("deploymentOption", deployment),
                ],
            )
        )
    # EKS bills clusters per hour; extended support has its own usage type.
    eks_filters = [_term("regionCode", region)]
    queries.append(
        LiveQuery(
            "eks_control_plane_standard",
            "AmazonEKS",
            eks_filters,
            _usage_type_endswith("AmazonEKS-Hours:perCluster"),
        )
    )
    queries.append(
        LiveQuery(
            "eks_control_plane_extended_support",
            "AmazonEKS",
            eks_filters,
            _usage_type_endswith("AmazonEKS-Hours:extendedSupport"),
        )
    )
    return queries


def live_price_book(
    queries: list[LiveQuery],
    *,
    client: PricingClient | None = None,
    bundled: PriceBook | None = None,
    today: date | None = None,
) -> tuple[PriceBook, list[str]]:
    """Bundled prices overlaid with the Price List API's answers, and warnings.

    Raises LivePricesError without credentials (no silent fallback: the caller asked for live
    prices). An item the API does not answer keeps its bundled price, with a warning.
    """
    client = client or pricing_client()
    base = bundled or bundled_price_book()
    services = dict(base.services)
    instances = dict(base.instances)
    live: set[str] = set()
    warnings: list[str] = []
    answers: dict[tuple[str, str], list[str]] = {}
    for query in queries:
        key = (query.service_code, json.dumps(query.filters, sort_keys=True))
        if key not in answers:
            answers[key] = _products(client, query.service_code, query.filters)
        usd = on_demand_usd(answers[key], query.match)
        if usd is None:
            warnings.append(
                f"the Price List API returned no on-demand price for {query.item}; "
                f"using the bundled price of {base.as_of.isoformat()}"
            )
            continue
        live.add(query.item)
        if query.item.startswith("ec2 "):
            instances[query.item.removeprefix("ec2 ")] = usd
        else:
            services[query.item] = usd
    book = replace(
        base,
        as_of=today or date.today(),
        source="AWS Price List API (EC2, ElastiCache, RDS, EKS); the rest bundled "
        f"({base.as_of.isoformat()})",
        services=services,
        instances=instances,
        live_items=frozenset(live),
    )
    return book, warnings
