"""Fixtures of the example's end-to-end tests (notes_app.py): its servers, migrated once per module,
and its processes, stopped after each test (their logs printed when it failed)."""

from collections.abc import Iterator

import pytest

from tests.examples.notes_app import App, ThrowawayPostgres, ThrowawayRedis, app_processes, create_database


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[ThrowawayPostgres, ThrowawayRedis]]:
    postgres, redis = ThrowawayPostgres(), ThrowawayRedis()
    try:
        postgres.start()
        redis.start()
        create_database(postgres)
        yield postgres, redis
    finally:
        redis.stop()
        postgres.stop()


@pytest.fixture(scope="module")
def migrated(servers, tmp_path_factory) -> tuple[ThrowawayPostgres, ThrowawayRedis]:
    """The module's servers, the example's tables created by its `migrate` process."""
    app_processes(servers, tmp_path_factory.mktemp("migrate")).migrate()
    return servers


@pytest.fixture
def app(migrated, tmp_path, request) -> Iterator[App]:
    processes = app_processes(migrated, tmp_path)
    try:
        yield processes
    finally:
        processes.stop_after(request)


