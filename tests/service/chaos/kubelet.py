"""What the kubelet does for a pod's containers: probes, and a restart after they fail.

Per container, as the manifests declare it (infra/stack/workloads/manifests.py, proxy.py):
the startup probe runs every `periodSeconds` until it succeeds (a restart after
`failureThreshold` failures); then the liveness probe runs every `periodSeconds`, and
`failureThreshold` failures in a row restart the container. A container that exits is
restarted at once (restartPolicy Always), the next ones after a back-off of 10 s doubling up
to 300 s. A restart sends SIGTERM to the container's processes, then SIGKILL after the
termination grace period. https://kubernetes.io/docs/concepts/configuration/liveness-readiness-startup-probes/
https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#container-restarts

Only the liveness probes' periods are divided by the run's scale factor (and the heartbeat's
max age and interval with them, see pod.py): they decide how soon a fault turns into a restart.
Startup probes, timeouts, the grace period and the back-off are the manifests' own. The preStop
hook is not run (it only delays the SIGTERM).
"""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from service_processes import Proc, _signal_group

BACKOFF_FIRST = 10.0
BACKOFF_MAX = 300.0
TICK = 0.5
"""How often an exit is looked for (the kubelet sees it at once)."""


@dataclass(frozen=True)
class Probe:
    period: float
    failures: int
    timeout: float

    @classmethod
    def of(cls, manifest: dict[str, Any], scale: float = 1.0) -> Probe:
        return cls(period=manifest["periodSeconds"] / scale, failures=manifest["failureThreshold"],
                   timeout=manifest["timeoutSeconds"])


@dataclass
class Restart:
    container: str
    reason: str
    at: float
    healthy: bool | None = None
    """For a liveness restart of a worker: was it still able to work (see pod.worker_was_healthy)."""
    why: str = ""


@dataclass
class Container:
    name: str
    start: Callable[[int], Proc]
    """Starts the container's process; the argument counts restarts (for distinct log names)."""
    check: Callable[[Proc, float], bool]
    """One probe: the process and the probe's timeout -> success."""
    startup: Probe
    liveness: Probe
    grace: float
    judge: Callable[[Container], tuple[bool, str]] | None = None
    """Called before a liveness restart: was the container healthy after all, and why."""
    proc: Proc | None = None
    first_failure_log_offset: int = 0
    started: threading.Event = field(default_factory=threading.Event)


class Kubelet:
    def __init__(self, containers: list[Container]) -> None:
        self.containers = containers
        self.restarts: list[Restart] = []
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(c,), name=f"kubelet-{c.name}", daemon=True)
                         for c in containers]

    def start(self, timeout: float) -> None:
        for thread in self._threads:
            thread.start()
        deadline = time.monotonic() + timeout
        for container in self.containers:
            if not container.started.wait(max(0.1, deadline - time.monotonic())):
                raise TimeoutError(f"{container.name} did not pass its startup probe in {timeout:.0f} s")

    def stop(self) -> None:
        self.stopping.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def container(self, name: str) -> Container:
        return next(c for c in self.containers if c.name == name)

    def _run(self, container: Container) -> None:
        count = 0
        container.proc = container.start(count)
        while not self.stopping.is_set():
            reason = self._watch(container, container.startup, startup=True)
            if reason == "started":
                container.started.set()
                reason = self._watch(container, container.liveness, startup=False)
            if self.stopping.is_set() or reason == "stopping":
                return
            record = Restart(container.name, reason, time.time())
            if reason == "liveness" and container.judge is not None:
                record.healthy, record.why = container.judge(container)
            with self._lock:
                self.restarts.append(record)
            self._kill(container)
            backoff = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (count - 1)) if count else 0.0
            if self.stopping.wait(backoff):
                return
            count += 1
            container.proc = container.start(count)

    def _watch(self, container: Container, probe: Probe, *, startup: bool) -> str:
        """Probes until startup succeeds ("started") or the container must restart (the reason)."""
        proc = container.proc
        assert proc is not None
        failures = 0
        next_probe = time.monotonic() + probe.period
        while not self.stopping.wait(TICK):
            code = proc.popen.poll()
            if code is not None:
                return f"exited {code}"
            if time.monotonic() < next_probe:
                continue
            next_probe = time.monotonic() + probe.period
            if container.check(proc, probe.timeout):
                if startup:
                    return "started"
                failures = 0
                continue
            failures += 1
            if failures == 1:
                container.first_failure_log_offset = proc.log_path.stat().st_size if proc.log_path.exists() else 0
            if failures >= probe.failures:
                return "startup" if startup else "liveness"
        return "stopping"

    def _kill(self, container: Container) -> None:
        proc = container.proc
        assert proc is not None
        if proc.popen.poll() is None:
            _signal_group(proc.pid, signal.SIGTERM)
            try:
                proc.popen.wait(timeout=container.grace)
            except subprocess.TimeoutExpired:
                pass
        _signal_group(proc.pid, signal.SIGKILL)  # the container's other processes (pool children) go too
        try:
            proc.popen.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass

