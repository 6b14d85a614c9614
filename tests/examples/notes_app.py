"""The example app (examples/notes/) run as the platform runs it, against PostgreSQL and Redis
servers of its own: every process starts as ``python -m django_eks_runtime <process>`` in the
example's directory, with only the platform's environment (docs/app-contract.md).

The servers and the process helpers are the service tests' (tests/service/throwaway_servers.py,
service_processes.py); nothing of the demo service runs.
"""

import sys
from pathlib import Path

import psycopg

SERVICE_TESTS = Path(__file__).resolve().parents[1] / "service"
if str(SERVICE_TESTS) not in sys.path:
    sys.path.insert(0, str(SERVICE_TESTS))

from service_processes import Proc, Processes, free_port, wait_for  # noqa: E402
from throwaway_servers import ThrowawayPostgres, ThrowawayRedis  # noqa: E402

EXAMPLE_DIR = Path(__file__).resolve().parents[2] / "examples" / "notes"
RUN = [sys.executable, "-m", "django_eks_runtime"]
DATABASE = "notes"

# The environment a pod of the example gets; the test process's own Django variables (the
# service tests set them) must not leak into the example's processes.
APP_ENV = {
    "DJANGO_SETTINGS_MODULE": "notesite.settings",
    "APP_WSGI": "notesite.wsgi:application",
    "APP_CELERY": "notesite.celery:app",
    "DJANGO_SECRET_KEY": "example-tests-only",
    "DJANGO_LOG_LEVEL": "INFO",
    "PYTHONUNBUFFERED": "1",
}


def database_url(server: ThrowawayPostgres) -> str:
    return server.url(DATABASE)


def create_database(server: ThrowawayPostgres) -> None:
    def connected() -> psycopg.Connection | None:
        # Once seen refused right after a start under load: give the server a few seconds.
        try:
            return psycopg.connect(server.url("postgres"), autocommit=True, connect_timeout=5)
        except psycopg.OperationalError as error:
            print(f"PostgreSQL on {server.port} not answering yet: {error}")
            return None

    with wait_for(connected, timeout=30, interval=0.5, what=f"PostgreSQL on {server.port}") as connection:
        connection.execute(f"CREATE DATABASE {DATABASE}")


class App(Processes):
    """The example's processes, each through the runtime's launcher in the example's directory."""

    def run(self, name: str, process: str, *extra: str, env: dict[str, str] | None = None):
        return self.start(name, [*RUN, process, *extra], env=env, cwd=EXAMPLE_DIR)

    def migrate(self) -> None:
        proc = self.run("migrate", "migrate")
        assert proc.wait(timeout=120) == 0, proc.log()

    def beat(self, *, env: dict[str, str] | None = None) -> Proc:
        proc = self.run("beat", "beat", env=env)
        wait_for(lambda: self._alive(proc) and "beat: Starting" in proc.log(), timeout=60, what="beat started")
        return proc

    def serve(self, server: str, name: str = "web", *, env: dict[str, str] | None = None) -> tuple[Proc, str, str]:
        """The web process on a free port, its probe server on another: (process, app URL, probes URL)."""
        port, probe_port = free_port(), free_port()
        settings = {"WEB_SERVER": server, "WEB_BIND": f"127.0.0.1:{port}", "WEB_THREADS": "4",
                    "PROBE_BIND": f"127.0.0.1:{probe_port}", **(env or {})}
        proc = self.run(name, "web", env=settings)
        url, probes = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{probe_port}"
        self.wait_http(proc, f"{probes}/healthz", timeout=60)
        return proc, url, probes

    def queue_worker(self, queues: str, *, env: dict[str, str] | None = None) -> Proc:
        """A worker Deployment's process: WORKER_QUEUES, and a node name per queue group."""
        heartbeat = str(self.tmp_path / f"{queues}.heartbeat")
        proc = self.run(f"worker-{queues}", "worker", "--hostname", f"{queues}@%h",
                        env={"WORKER_QUEUES": queues, "CELERY_HEARTBEAT_FILE": heartbeat, **(env or {})})
        wait_for(lambda: self._alive(proc) and "ready." in proc.log(), timeout=60, what=f"worker {queues} ready")
        return proc


def app_processes(servers: tuple[ThrowawayPostgres, ThrowawayRedis], tmp_path: Path) -> App:
    postgres, redis = servers
    env = {**APP_ENV, "DATABASE_URL": database_url(postgres), "REDIS_URL": redis.url(0),
           "BEAT_SCHEDULE_FILE": str(tmp_path / "celerybeat-schedule")}
    return App(tmp_path, env)


def query(servers, sql: str, *params: object) -> list[tuple]:
    with psycopg.connect(database_url(servers[0])) as connection:
        return connection.execute(sql, params).fetchall()

