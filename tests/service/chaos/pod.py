"""The service as the cluster runs it, on this machine, configured from the stack's own settings.

A web pod (the nginx sidecar on its rendered config in front of uWSGI, `python -m config.launch
web`), two worker pods (`python -m config.launch worker`), the reconciler CronJob (`python -m
config.launch reconcile` once a minute) and the kubelet (kubelet.py), against a Redis of its
own, the run's PostgreSQL and moto's S3 in a process of its own (s3_process.py). The
environment is the ConfigMap's (`manifests.app_settings`) plus each container's settings, but
for three things: the local settings module (production verifies RDS's TLS certificate), the
servers' addresses, and the liveness timing divided by the scale factor.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import redis
import requests
from s3_server import REGION, credentials
from service_processes import SERVICE_DIR, Proc, Processes, free_port, wait_for

from chaos.kubelet import Container, Kubelet, Probe
from stack.config.model import StackConfig
from stack.config.workers import single_worker_queue
from stack.workloads import app_config, web, worker
from stack.workloads import proxy
from stack.workloads.reconciler import DEADLINE_SECONDS as RECONCILE_DEADLINE

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
HEARTBEAT_INTERVAL = 10
"""The worker's CELERY_HEARTBEAT_INTERVAL default (service/config/settings/base.py), scaled here
with the probe's max age so that their ratio stays the cluster's."""
WORKERS = 2
ACTIVITY = re.compile(r"Task \S+ received|Task \S+ succeeded|job \S+ done:")


@dataclasses.dataclass(frozen=True)
class Timing:
    """The kubelet's liveness timing of one run: the manifests' numbers divided by `scale`."""

    config: StackConfig
    scale: float

    @property
    def worker_liveness(self) -> Probe:
        return Probe.of(worker.worker_probes()["livenessProbe"], self.scale)

    @property
    def web_liveness(self) -> Probe:
        return Probe.of(web.web_probes()["livenessProbe"], self.scale)

    @property
    def proxy_liveness(self) -> Probe:
        return Probe.of(self._proxy_probes()["livenessProbe"], self.scale)

    @property
    def heartbeat_max_age(self) -> float:
        return worker.HEARTBEAT_MAX_AGE_SECONDS / self.scale

    @property
    def heartbeat_interval(self) -> int:
        return max(1, round(HEARTBEAT_INTERVAL / self.scale))

    @property
    def reconcile_every(self) -> int:
        return self.config.reconciler.every_minutes * 60

    def liveness_horizon(self) -> float:
        """Longest a worker whose heartbeat stopped can go before its restart."""
        probe = self.worker_liveness
        return self.heartbeat_max_age + probe.period * (probe.failures + 1) + self.heartbeat_interval

    def _proxy_probes(self) -> dict[str, Any]:
        return proxy.proxy_container(self.config.web, {}, image="")

    def describe(self) -> str:
        w, h, p = self.worker_liveness, self.web_liveness, self.proxy_liveness
        return (f"kubelet timing scaled down {self.scale:g}x: worker liveness every {w.period:.3g} s, "
                f"{w.failures} failures, heartbeat max age {self.heartbeat_max_age:g} s, beat every "
                f"{self.heartbeat_interval} s; web /healthz every {h.period:.3g} s, {h.failures} failures; "
                f"proxy TCP every {p.period:.3g} s, {p.failures} failures; reconciler every "
                f"{self.reconcile_every} s (not scaled), queued after "
                f"{self.config.reconciler.queued_after_seconds} s, running after task time limit "
                f"{self.config.worker.task_time_limit_seconds} s + {self.config.reconciler.running_grace_seconds} s")


class Pod:
    """One scenario's processes; `stop()` ends all of them."""

    def __init__(self, timing: Timing, workdir: Path, *, database_url: str, s3_url: str, bucket: str) -> None:
        self.timing = timing
        config = timing.config
        self.processes = Processes(tmp_path=workdir, base_env={"PYTHONPATH": str(SERVICE_DIR)})
        self.redis_port = free_port()
        self.redis = self.processes.redis_server(self.redis_port)
        self.redis_url = f"redis://127.0.0.1:{self.redis_port}/0"
        self.queue = single_worker_queue(config)
        self.env = {
            **app_config.app_settings(config, alb_dns_name="127.0.0.1", app_url="http://localhost"),
            "DJANGO_SETTINGS_MODULE": "config.settings.local",
            "DATABASE_URL": database_url,
            "REDIS_URL": self.redis_url,
            "CELERY_HEARTBEAT_INTERVAL": str(timing.heartbeat_interval),
            "AWS_STORAGE_BUCKET_NAME": bucket, "AWS_S3_REGION_NAME": REGION, "AWS_S3_ENDPOINT_URL": s3_url,
        }
        app_port, probe_port, http_port = free_port(), free_port(), free_port()
        self.url = f"http://127.0.0.1:{http_port}"
        self.probe_url = f"http://127.0.0.1:{probe_port}"
        web_env = {**self.env, **web.web_settings(config.web), **credentials("web"),
                   "WEB_BIND": f"127.0.0.1:{app_port}", "PROBE_BIND": f"127.0.0.1:{probe_port}"}
        self.nginx_conf = self._write_nginx_conf(workdir, http_port, app_port)
        web_probes = web.web_probes()
        proxy_probes = timing._proxy_probes()  # noqa: SLF001
        web_grace = float(web.web_termination_grace_seconds(config.web))
        containers = [
            Container("proxy", self._start_proxy, self._tcp_open(http_port), Probe.of(proxy_probes["startupProbe"]),
                      timing.proxy_liveness, web_grace),
            Container("web", lambda n: self.processes.launch(f"web-{n}", "web", env=web_env), self._healthz,
                      Probe.of(web_probes["startupProbe"]), timing.web_liveness, web_grace),
        ]
        worker_probes = worker.worker_probes()
        worker_grace = float(worker.worker_termination_grace_seconds(config.worker))
        for index in range(1, WORKERS + 1):
            name = f"worker-{index}"
            heartbeat_file = workdir / f"{name}.heartbeat"
            worker_env = {**self.env, **worker.worker_settings(config.worker), **credentials("worker"),
                          "CELERY_HEARTBEAT_FILE": str(heartbeat_file)}
            containers.append(Container(
                name, self._worker_starter(name, worker_env), self._heartbeat_fresh(heartbeat_file),
                Probe.of(worker_probes["startupProbe"]), timing.worker_liveness, worker_grace,
                judge=self.worker_was_healthy))
        self.kubelet = Kubelet(containers)
        self._reconciler_env = {**self.env, **credentials("reconciler")}
        self._reconciling = threading.Event()
        self._cron = threading.Thread(target=self._cron_job, name="reconciler", daemon=True)

    # --- starting -------------------------------------------------------------------------

    def start(self) -> None:
        self.kubelet.start(timeout=180)
        self._cron.start()

    def stop(self) -> None:
        self._reconciling.set()
        self.kubelet.stop()
        self._cron.join(timeout=30)
        self.processes.stop_all()

    def _write_nginx_conf(self, workdir: Path, http_port: int, app_port: int) -> Path:
        temp = workdir / "nginx"
        temp.mkdir()
        args = dataclasses.replace(proxy.proxy_args(self.timing.config.web), listen=f"127.0.0.1:{http_port}",
                                   upstream=f"127.0.0.1:{app_port}", temp_dir=str(temp))
        path = workdir / "nginx.conf"
        path.write_text(proxy.nginx_conf(args))
        return path

    def _start_proxy(self, count: int) -> Proc:
        command = proxy.proxy_command(str(self.nginx_conf))
        command[0] = NGINX
        if os.geteuid() == 0 and command[-1] == "daemon off;":
            command[-1] = "daemon off; user root;"  # as root nginx's workers would be `nobody`
        return self.processes.start(f"proxy-{count}", command, cwd=self.nginx_conf.parent)

    def _worker_starter(self, name: str, env: dict[str, str]):
        # One node name per worker pod, the same across its container's restarts (the pod's).
        return lambda n: self.processes.launch(f"{name}-{n}", "worker", "--hostname", f"{name}@chaos", env=env)

    # --- probes ---------------------------------------------------------------------------

    @staticmethod
    def _tcp_open(port: int):
        def check(_proc: Proc, timeout: float) -> bool:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=timeout):
                    return True
            except OSError:
                return False

        return check

    def _healthz(self, _proc: Proc, timeout: float) -> bool:
        try:
            return requests.get(f"{self.probe_url}/healthz", timeout=timeout).status_code == 200
        except requests.RequestException:
            return False

    def _heartbeat_fresh(self, heartbeat_file: Path):
        """The pod's exec probe (`manifests.heartbeat_command()`), its max age scaled, on this file."""
        command = worker.heartbeat_command()
        command[0] = sys.executable
        command[command.index("--max-age") + 1] = f"{self.timing.heartbeat_max_age:g}"
        command += ["--file", str(heartbeat_file)]

        def check(_proc: Proc, timeout: float) -> bool:
            try:
                return subprocess.run(command, cwd=SERVICE_DIR, capture_output=True, timeout=timeout).returncode == 0
            except subprocess.TimeoutExpired:
                return False

        return check

    def worker_was_healthy(self, container: Container) -> tuple[bool, str]:
        """Whether a worker the liveness probe is about to restart could still work.

        Healthy when, after its probe first failed, it still received or finished a task (it is
        consuming: only the heartbeat stopped), or when Redis answers and holds no message at
        all, neither queued nor delivered and unacknowledged (so this worker holds no delivery
        it could be stuck on: it is idle and free). Not healthy otherwise: e.g. Redis frozen, or
        a delivery whose acknowledgement was lost while work waits in the queue.
        """
        proc = container.proc
        assert proc is not None
        with open(proc.log_path, "rb") as log:
            log.seek(container.first_failure_log_offset)
            since = log.read().decode(errors="replace")
        if ACTIVITY.search(since):
            return True, "took or finished a task after its probe first failed"
        try:
            client = redis.Redis.from_url(self.redis_url, socket_timeout=2, socket_connect_timeout=2)
            queued, unacked = client.llen(self.queue), client.hlen("unacked")
            client.close()
        except redis.RedisError as exc:
            return False, f"Redis did not answer: {type(exc).__name__}"
        if queued == 0 and unacked == 0:
            return True, "idle, and Redis holds no message it could be stuck on"
        return False, f"no task since its probe failed; {queued} queued, {unacked} unacknowledged"

    # --- the reconciler CronJob -----------------------------------------------------------

    def _cron_job(self) -> None:
        """One pass a minute; concurrencyPolicy Forbid (a pass still running skips the next),
        and a pass past the Job's deadline is killed."""
        count = 0
        running: Proc | None = None
        started = 0.0
        while not self._reconciling.wait(self.timing.reconcile_every):
            if running is not None and running.popen.poll() is None:
                if time.monotonic() - started > RECONCILE_DEADLINE:
                    running.popen.kill()
                continue
            count += 1
            running = self.processes.launch(f"reconcile-{count}", "reconcile", env=self._reconciler_env)
            started = time.monotonic()

    # --- what the faults act on -----------------------------------------------------------

    def worker(self, index: int) -> Proc:
        proc = self.kubelet.container(f"worker-{index}").proc
        assert proc is not None
        return proc

    def redis_again(self) -> None:
        self.redis = self.processes.redis_server(self.redis_port, name="redis-again")

    def worker_logs(self) -> str:
        return "\n".join(p.log() for p in self.processes.procs if p.name.startswith("worker-"))

    def wait_running(self, database_url: str, count: int, timeout: float) -> bool:
        import psycopg

        def running() -> bool:
            with psycopg.connect(database_url, autocommit=True) as conn:
                (n,) = conn.execute("SELECT count(*) FROM jobs_job WHERE status = 'running'").fetchone()
            return n >= count

        try:
            wait_for(running, timeout=timeout, interval=0.05, what=f"{count} jobs running")
            return True
        except TimeoutError:
            return False
