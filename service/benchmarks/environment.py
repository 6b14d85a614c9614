"""Where the benchmark runs: the database and Redis it uses, the machine, the versions it measures."""

import os
import platform
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
import redis
from psycopg import sql

SERVICE_DIR = Path(__file__).resolve().parents[1]
BIN_DIR = Path(sys.executable).parent
LAUNCH = [sys.executable, "-m", "config.launch"]
"""How the benchmark starts its web and worker pods: the image's launcher (config/launch.py)."""
# Local defaults: a database of the benchmark's own and a Redis database number nobody else uses.
LOCAL_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/django_eks_bench"
LOCAL_REDIS_URL = "redis://127.0.0.1:6379/15"
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
# The run's own Celery queue (a Redis list of that name): a worker of a deployed stack, or of
# another run, on the same Redis database would otherwise take the benchmark's jobs, skip them
# (their rows are in another database) and leave the run waiting for jobs that never finish.
BENCH_QUEUE = f"bench-{socket.gethostname()}-{os.getpid()}"
# The run's uploads and results: a local directory its pods share, also in the cluster, where the
# Job runs every pod in one container with the worker's account (which may not put uploads in the
# bucket). The figures leave out the S3 requests a deployed web pod and worker make per job.
BENCH_FILES_DIR = Path(tempfile.gettempdir()) / f"django-eks-bench-files-{os.getpid()}"


@dataclass(frozen=True)
class Backends:
    database_url: str
    redis_url: str

    @classmethod
    def from_environment(cls) -> "Backends":
        return cls(database_url=os.environ.get("DATABASE_URL") or LOCAL_DATABASE_URL,
                   redis_url=os.environ.get("REDIS_URL") or LOCAL_REDIS_URL)

    def database_url_for(self, application_name: str) -> str:
        """The database URL tagged with an application name, so the pod's backends can be found."""
        parts = urlsplit(self.database_url)
        query = dict(parse_qsl(parts.query))
        query["application_name"] = application_name
        return urlunsplit(parts._replace(query=urlencode(query)))

    @property
    def database_is_local(self) -> bool:
        return urlsplit(self.database_url).hostname in LOCAL_HOSTS

    @property
    def redis_is_local(self) -> bool:
        return urlsplit(self.redis_url).hostname in LOCAL_HOSTS


def database_connect(url: str) -> psycopg.Connection:
    return psycopg.connect(url, autocommit=True, connect_timeout=5)


def database_ensure(backends: Backends) -> None:
    """Create the database if missing (local runs) and apply the migrations."""
    parts = urlsplit(backends.database_url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres"))
    try:
        with database_connect(admin) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.Error:
        pass  # a managed database that exists already, with a user that cannot list others
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=SERVICE_DIR,
                   env=service_env(backends), check=True)


def service_env(backends: Backends, *, application_name: str = "bench", **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GUNICORN_", "CELERY_", "WEB_", "WORKER_")) and k not in ("AWS_STORAGE_BUCKET_NAME", "AWS_S3_ENDPOINT_URL")}
    env.update({
        # The pods are the benchmark's own, on loopback: plain HTTP to 127.0.0.1, also in a
        # cluster Job whose environment carries the production settings and the ALB's hosts.
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DJANGO_ALLOWED_HOSTS": "localhost,127.0.0.1",
        "DATABASE_URL": backends.database_url_for(application_name),
        "REDIS_URL": backends.redis_url,
        "PYTHONPATH": str(SERVICE_DIR),
        "DJANGO_LOG_LEVEL": "WARNING",
        "CELERY_QUEUE": BENCH_QUEUE,
        "DJANGO_MEDIA_ROOT": str(BENCH_FILES_DIR),
        # The HTTP workloads include /api/io, off unless enabled.
        "API_IO_ENABLED": "true",
        **extra,
    })
    return env


def backend_pids(backends: Backends, application_prefix: str) -> list[int]:
    """PostgreSQL server processes serving connections whose application name starts with the prefix."""
    with database_connect(backends.database_url) as conn:
        rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE application_name LIKE %s",
                            (application_prefix + "%",)).fetchall()
    return [row[0] for row in rows]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_mib() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    except OSError:
        pass
    return 0


def machine(instance_type: str | None, cores: int) -> dict[str, object]:
    return {
        "hostname": socket.gethostname(),
        "cpu_model": _cpu_model(),
        "cores": cores,
        "memory_mib": _memory_mib(),
        "instance_type": instance_type,
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def versions(backends: Backends) -> dict[str, str | None]:
    with database_connect(backends.database_url) as conn:
        row = conn.execute("SHOW server_version").fetchone()
        postgresql = str(row[0]).split()[0] if row else None
    client = redis.Redis.from_url(backends.redis_url, socket_connect_timeout=5)
    try:
        redis_version = str(client.info("server").get("redis_version"))
    finally:
        client.close()
    return {
        "python": platform.python_version(),
        "django": _version("django"),
        "celery": _version("celery"),
        "gunicorn": _version("gunicorn"),
        "uwsgi": _version("pyuwsgi"),
        "granian": _version("granian"),
        "pillow": _version("pillow"),
        "locust": _version("locust"),
        "postgresql": postgresql,
        "redis": redis_version,
    }
