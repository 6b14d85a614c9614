"""A Prometheus-compatible query API, read over a window: exact counter increases and quantiles.

The API is Prometheus's HTTP API (`POST <base>/api/v1/query` with a form-encoded `query` and
`time`; https://prometheus.io/docs/prometheus/latest/querying/api/#instant-queries). Amazon
Managed Service for Prometheus serves the same API under
`https://aps-workspaces.<region>.amazonaws.com/workspaces/<id>/api/v1/`, and requires every
request signed with AWS Signature Version 4 for the service `aps`
(https://docs.aws.amazon.com/prometheus/latest/userguide/AMP-onboard-query-APIs.html,
https://docs.aws.amazon.com/prometheus/latest/userguide/AMP-compatible-APIs.html); requests
to such a host are signed with botocore's SigV4Auth and the default credential chain.

Why the increases are not PromQL's `increase()`: it extrapolates the samples it finds to the
edges of the range, so a counter that rose by exactly 5 reads 5.04 or 4.6
(https://prometheus.io/docs/prometheus/latest/querying/functions/#increase: "extrapolated to
cover the full time range ... non-integer result even if a counter increases only by integer
increments"; the rule is prometheus/prometheus@c77c3a8 "promql: Limit extrapolation of
delta/rate/increase", promql/functions.go `extrapolatedRate`), and it never counts the part of
a series' first sample that came before the series was scraped at all (a Celery queue's
counters appear with the first task done, at 1 or more). The figures here are counts a person
checks against what they did, so the raw samples are fetched with a range selector and summed
here: the value at the window's start is the series' last sample at or before it (none: the
series was born within the window and counted from 0, as every Prometheus counter starts), and
every rise after it is added, a drop being a counter reset (a restarted process) whose new
value is added whole, as `increase()` treats resets.
"""

from __future__ import annotations

import json
import math
import re
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

LOOKBACK_SECONDS = 300
"""How far before the window the samples are read, to find each series' value at its start:
Prometheus's default lookback delta (5 minutes), past which a series is stale."""

AMP_HOST = re.compile(r"^aps-workspaces\.([a-z0-9-]+)\.amazonaws\.com$")


class PrometheusError(RuntimeError):
    """The query API could not be reached, refused the query, or answered something else."""


Labels = Mapping[str, str]
Samples = list[tuple[float, float]]


@dataclass(frozen=True)
class Series:
    labels: dict[str, str]
    samples: Samples = field(default_factory=list)


Signer = Callable[[str, bytes, dict[str, str]], dict[str, str]]
"""(url, body, headers) -> headers with the signature."""


def sigv4_signer(region: str) -> Signer:
    """Signs a request for the `aps` service in `region` with the default AWS credentials."""
    import botocore.session
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    credentials = botocore.session.get_session().get_credentials()
    if credentials is None:
        raise PrometheusError(
            "the query URL is an Amazon Managed Service for Prometheus workspace, whose API takes only "
            "SigV4-signed requests, and no AWS credentials were found (environment, profile or role)"
        )

    def sign(url: str, body: bytes, headers: dict[str, str]) -> dict[str, str]:
        request = AWSRequest(method="POST", url=url, data=body, headers=headers)
        SigV4Auth(credentials, "aps", region).add_auth(request)
        return dict(request.headers.items())

    return sign


def api_base(url: str) -> str:
    """The `.../api/v1/` base of a query URL: the stack output's, or a Prometheus server's root."""
    trimmed = url.rstrip("/")
    for suffix in ("/api/v1/query", "/api/v1"):
        if trimmed.endswith(suffix):
            trimmed = trimmed[: -len(suffix)]
    return trimmed + "/api/v1/"


class PrometheusApi:
    """Instant queries against one query API, signed when it is an AMP workspace's."""

    def __init__(self, url: str, *, timeout: float = 60.0, signer: Signer | None = None) -> None:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise PrometheusError(f"query URL {url!r} is not an http(s) URL")
        self.url = url
        self.base = api_base(url)
        self.timeout = timeout
        amp = AMP_HOST.match(parsed.hostname or "")
        self.signer = signer if signer is not None else (sigv4_signer(amp.group(1)) if amp else None)

    def query(self, promql: str, at: float) -> tuple[str, list[Series]]:
        """(resultType, series) of `promql` evaluated at the epoch time `at`."""
        endpoint = self.base + "query"
        body = urllib.parse.urlencode({"query": promql, "time": f"{at:.3f}"}).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if self.signer is not None:
            headers = self.signer(endpoint, body, headers)
        request = urllib.request.Request(endpoint, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                document = json.loads(response.read())
        except urllib.error.HTTPError as e:
            detail = e.read().decode(errors="replace")[:500]
            raise PrometheusError(f"{endpoint}: HTTP {e.code} for {promql!r}: {detail}") from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise PrometheusError(f"{endpoint}: cannot be reached ({reason})") from None
        except json.JSONDecodeError:
            raise PrometheusError(f"{endpoint}: the answer to {promql!r} is not JSON") from None
        if document.get("status") != "success":
            raise PrometheusError(f"{endpoint}: {promql!r} failed: {document.get('error', document)}")
        data = document["data"]
        kind = data["resultType"]
        out = []
        for item in data["result"]:
            if kind == "matrix":
                samples = [(float(t), float(v)) for t, v in item["values"]]
            else:
                t, v = item["value"]
                samples = [(float(t), float(v))]
            out.append(Series(dict(item["metric"]), samples))
        return kind, out

    def range_samples(self, selector: str, start: float, end: float) -> list[Series]:
        """Every series of `selector` with its raw samples from LOOKBACK_SECONDS before `start` to `end`."""
        seconds = math.ceil(end - start) + LOOKBACK_SECONDS
        _, series = self.query(f"{selector}[{seconds}s]", end)
        return series


def counter_increase(samples: Iterable[tuple[float, float]], start: float) -> float:
    """How much a counter rose after `start`, from its raw samples (see the module's docstring)."""
    previous: float | None = None
    risen = 0.0
    for t, v in sorted(samples):
        if t <= start:
            previous = v
            continue
        base = 0.0 if previous is None else previous
        risen += v if v < base else v - base
        previous = v
    return risen


def increases_by(series: Iterable[Series], start: float, keys: tuple[str, ...]) -> dict[tuple[str, ...], float]:
    """Exact increases after `start`, summed by the label values `keys`."""
    totals: dict[tuple[str, ...], float] = defaultdict(float)
    for s in series:
        totals[tuple(s.labels.get(k, "") for k in keys)] += counter_increase(s.samples, start)
    return dict(totals)


def has_samples_after(series: Iterable[Series], start: float) -> bool:
    return any(t > start for s in series for t, _ in s.samples)


def bucket_quantile(q: float, buckets: Mapping[float, float]) -> float | None:
    """The q-quantile of a histogram from its cumulative bucket counts {upper bound: count}.

    Linear interpolation within the bucket the rank falls in, the first bucket's lower bound 0,
    and the highest finite bound when the rank falls in the +Inf bucket: the rules PromQL's
    histogram_quantile states
    (https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile).
    None when nothing was observed.
    """
    bounds = sorted(buckets)
    if not bounds or not math.isinf(bounds[-1]):
        return None
    total = buckets[bounds[-1]]
    if total <= 0:
        return None
    rank = q * total
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower
            if count == below:
                return bound
            return lower + (bound - lower) * (rank - below) / (count - below)
        lower, below = bound, count
    return lower


def quantiles_by(
    q: float, bucket_series: Iterable[Series], start: float, key: str
) -> dict[str, float | None]:
    """The q-quantile per `key` label value of a histogram's `_bucket` series over the window."""
    summed = increases_by(bucket_series, start, (key, "le"))
    by_key: dict[str, dict[float, float]] = defaultdict(dict)
    for (value, le), count in summed.items():
        by_key[value][float(le)] = count
    return {value: bucket_quantile(q, buckets) for value, buckets in by_key.items()}
