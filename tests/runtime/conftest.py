"""Fixtures of the metrics tests (metrics_site.py): a Redis of the module's own, the test app's
processes, stopped after each test (their logs printed when it failed)."""

from collections.abc import Iterator

import pytest
import redis as redis_client

from tests.runtime.metrics_site import Site, ThrowawayRedis, site


@pytest.fixture(scope="module")
def redis() -> Iterator[ThrowawayRedis]:
    server = ThrowawayRedis()
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def app(redis, tmp_path, request) -> Iterator[Site]:
    redis_client.Redis.from_url(redis.url(0)).flushdb()
    processes = site(redis, tmp_path)
    try:
        yield processes
    finally:
        processes.stop_after(request)
