"""The broker path against Valkey, the engine ElastiCache runs by default (redis.engine: valkey).

The suite's own broker is Redis OSS. This runs the tests that prove the broker path once more in
a nested pytest whose throwaway broker is a Valkey server (SERVICE_TEST_BROKER=valkey, see
throwaway_servers.py), with the service's clients, settings and KEDA scaler settings unchanged:
a job submitted over HTTP is compressed by a Celery worker and fetched; the list KEDA's redis
scaler reads (LLEN of the queue) grows without workers and drains with one, every job done once.
A few tests, not the whole suite twice.
"""

from pathlib import Path

import pytest
from test_throwaway_servers import env_without_server_urls, run_pytest, scratch_tmpdir  # noqa: F401 (fixture)
from throwaway_servers import MissingServerBinaries, pg_binary, valkey_server_binary

SERVICE = Path(__file__).resolve().parent
BROKER_TESTS = [
    f"{SERVICE / 'test_throwaway_servers.py'}::test_the_throwaway_broker_is_the_engine_asked_for",
    f"{SERVICE / 'test_processes.py'}::test_upload_poll_and_fetch_compressed_image",
    f"{SERVICE / 'test_queue_autoscaling.py'}::test_the_watched_list_grows_without_workers_and_drains_with_one",
]


def test_the_broker_path_works_on_valkey(scratch_tmpdir):
    valkey_server_binary()  # fails here, saying what to install, without a Valkey server
    try:
        pg_binary("pg_ctl")
    except MissingServerBinaries as missing:  # the suite runs on given servers only
        pytest.skip(f"the nested run needs a throwaway PostgreSQL: {missing}")
    result, _ = run_pytest(*BROKER_TESTS,
                           env=env_without_server_urls(TMPDIR=str(scratch_tmpdir), SERVICE_TEST_BROKER="valkey"),
                           timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-3000:]
    assert f"{len(BROKER_TESTS)} passed" in result.stdout, result.stdout[-3000:]
    # The throwaway Valkey and PostgreSQL are gone (pytest's own tmp_path folders may stay).
    assert [p.name for p in scratch_tmpdir.iterdir() if p.name.startswith("svc-test-")] == []
