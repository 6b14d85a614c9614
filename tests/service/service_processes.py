"""Real gunicorn, Celery and Redis processes for the tests, bounded and always cleaned up."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import requests

from config import launch

SERVICE_DIR = Path(__file__).resolve().parents[2] / "service"


FIRST_PORT = int(os.environ.get("SERVICE_TEST_FIRST_PORT") or 20000)
"""Test servers bind ports below the kernel's ephemeral range (net.ipv4.ip_local_port_range,
32768-60999 by default), from which port 0 and every outgoing connection take theirs. Two test
runs at once on one machine (two checkouts) each set their own SERVICE_TEST_FIRST_PORT, far
enough apart for their processes' blocks (docs/testing.md)."""
PORTS_PER_PROCESS = 1200
_handed_out = -1
"""The index in this process's block of the last port handed out."""


def _port_range() -> range:
    """This test process's own ports: the xdist worker gwN has block N+1, a run without xdist
    block 0, so two processes never pick the same port between choosing it and binding it."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    block = int(worker[2:]) + 1 if worker.startswith("gw") and worker[2:].isdigit() else 0
    start = FIRST_PORT + block * PORTS_PER_PROCESS
    return range(start, start + PORTS_PER_PROCESS)


def free_port() -> int:
    """A loopback port nothing listens on, from this process's block, each one handed out once
    per pass over the block (a port the kernel still holds, or another program uses, is skipped)."""
    global _handed_out
    ports = _port_range()
    for _ in range(len(ports)):
        _handed_out += 1
        port = ports[_handed_out % len(ports)]
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError(f"no free loopback port in {ports.start}-{ports.stop - 1}")


def wait_for(condition: Callable[[], object], *, timeout: float, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait(self, timeout: float) -> int:
        return self.popen.wait(timeout=timeout)


@dataclass
class Processes:
    """Starts service processes in their own sessions and kills whatever is left at teardown."""

    tmp_path: Path
    base_env: dict[str, str]
    procs: list[Proc] = field(default_factory=list)

    def start(self, name: str, argv: list[str], *, env: dict[str, str] | None = None, cwd: Path = SERVICE_DIR,
              stderr_apart: bool = False) -> Proc:
        """`argv` with its stdout (and its stderr, unless `stderr_apart`: then in <name>.stderr) in <name>.log."""
        log_path = self.tmp_path / f"{name}.log"
        full_env = {**os.environ, **self.base_env, **(env or {})}
        stderr_path = log_path.with_suffix(".stderr") if stderr_apart else os.devnull
        with open(log_path, "ab") as log, open(stderr_path, "ab") as errors:
            popen = subprocess.Popen(
                argv, cwd=cwd, env=full_env, stdout=log, stderr=errors if stderr_apart else subprocess.STDOUT,
                start_new_session=True,
            )
        proc = Proc(name, popen, log_path)
        self.procs.append(proc)
        return proc

    def launch(self, name: str, process: str, *extra: str, env: dict[str, str] | None = None) -> Proc:
        """`python -m config.launch <process>`, the image's own start of each process."""
        return self.start(name, [sys.executable, "-m", "config.launch", process, *extra], env=env)

    def gunicorn(self, name: str = "web", *, env: dict[str, str] | None = None, threads: int = 8,
                 graceful_timeout: int = 30) -> tuple[Proc, str]:
        return self.web("gunicorn", name, env=env, threads=threads, graceful_timeout=graceful_timeout)

    def web(self, server: str, name: str = "web", *, env: dict[str, str] | None = None, threads: int = 8,
            graceful_timeout: int = 30, processes: int = 1) -> tuple[Proc, str]:
        """The web process the cluster runs for ``web.server``, bound to a free loopback port."""
        port = free_port()
        settings = {"WEB_SERVER": server, "WEB_PROCESSES": str(processes), "WEB_THREADS": str(threads),
                    "WEB_GRACEFUL_TIMEOUT_SECONDS": str(graceful_timeout), "WEB_BIND": f"127.0.0.1:{port}"}
        proc = self.launch(name, "web", env={**settings, **(env or {})})
        url = f"http://127.0.0.1:{port}"
        self.wait_http(proc, f"{url}/healthz")
        return proc, url

    def worker(self, name: str = "worker", *, env: dict[str, str] | None = None,
               slow_job_seconds: float | None = None) -> Proc:
        # The worker process the cluster runs (plus a unique node name).
        hostname = ["--hostname", f"{name}-{os.getpid()}@%h"]
        heartbeat = str(self.tmp_path / f"{name}.heartbeat")
        env = {"CELERY_HEARTBEAT_FILE": heartbeat, **(env or {})}
        if slow_job_seconds is None:
            proc = self.launch(name, "worker", *hostname, env=env)
        else:
            # Celery in-process with a slowed compression, on the launcher's own arguments.
            env["SLOW_JOB_SECONDS"] = str(slow_job_seconds)
            args = [*launch.command("worker", {**os.environ, **self.base_env, **env})[1:], *hostname]
            proc = self.start(name, [sys.executable, str(Path(__file__).with_name("slow_worker.py")), *args], env=env)
        wait_for(lambda: self._alive(proc) and "ready." in proc.log(), timeout=30, what=f"{name} ready")
        return proc

    def redis_server(self, port: int, name: str = "redis") -> Proc:
        from throwaway_servers import redis_server_binary

        proc = self.start(name, [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1",
                                 "--save", "", "--appendonly", "no"], cwd=self.tmp_path)
        wait_for(lambda: self._alive(proc) and _port_open(port), timeout=10, what=f"redis on {port}")
        return proc

    def wait_http(self, proc: Proc, url: str, timeout: float = 30) -> None:
        def up() -> bool:
            self._alive(proc)
            try:
                return requests.get(url, timeout=1).status_code == 200
            except requests.RequestException:
                return False

        wait_for(up, timeout=timeout, interval=0.2, what=url)

    def _alive(self, proc: Proc) -> bool:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}:\n{proc.log()[-4000:]}")
        return True

    def stop_after(self, request) -> None:
        """Stop every process; print their logs when the test (`request`'s item) failed (the
        report the root conftest keeps on the item)."""
        self.stop_all()
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            print(self.logs())

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.popen.poll() is None:
                _signal_group(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for proc in self.procs:
            try:
                proc.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            # Whatever is left in the session (pool children included) goes now.
            _signal_group(proc.pid, signal.SIGKILL)
            try:
                proc.popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass

    def logs(self) -> str:
        return "\n".join(f"----- {p.name} -----\n{p.log()[-3000:]}" for p in self.procs)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0
