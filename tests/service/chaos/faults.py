"""The faults, each injected once into a burst of jobs. A fault returns when it is over (the
server is back, or the process is killed); its end is what recovery is measured from."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from private_servers import PrivatePostgres
    from service_processes import Proc

    from chaos.pod import Pod

REDIS_DOWN_SECONDS = 5
"""Between Redis's SIGKILL and its restart (empty: nothing was saved), like a failover."""
REDIS_FROZEN_SECONDS = 40
"""Past the broker socket timeout (30 s): connections hang, then time out."""
POSTGRES_DOWN_SECONDS = 15
STORAGE_REFUSED_SECONDS = 20
STORAGE_HUNG_SECONDS = 40
BUSY_TIMEOUT = 60
"""How long a kill waits for both workers to be running a job (mid-job, as an OOM kill is)."""


@dataclass
class Servers:
    """The run's servers that outlive a scenario's pod."""

    postgres: PrivatePostgres
    s3: Proc
    s3_url: str

    @property
    def database_url(self) -> str:
        return self.postgres.url


def redis_kill(pod: Pod, servers: Servers) -> str:
    pod.redis.popen.kill()
    pod.redis.wait(timeout=10)
    time.sleep(REDIS_DOWN_SECONDS)
    pod.redis_again()
    return f"SIGKILL, restarted empty {REDIS_DOWN_SECONDS} s later"


def _for_a_while(pid: int, seconds: float, begin: signal.Signals, end: signal.Signals) -> None:
    os.kill(pid, begin)
    try:
        time.sleep(seconds)
    finally:
        os.kill(pid, end)


def redis_stop(pod: Pod, servers: Servers) -> str:
    _for_a_while(pod.redis.pid, REDIS_FROZEN_SECONDS, signal.SIGSTOP, signal.SIGCONT)
    return f"SIGSTOP for {REDIS_FROZEN_SECONDS} s"


def postgres_stop(pod: Pod, servers: Servers) -> str:
    servers.postgres.stop()
    time.sleep(POSTGRES_DOWN_SECONDS)
    servers.postgres.start()
    return f"fast shutdown, started again {POSTGRES_DOWN_SECONDS} s later"


def worker_kill(pod: Pod, servers: Servers) -> str:
    busy = pod.wait_running(servers.database_url, 2, BUSY_TIMEOUT)
    os.killpg(pod.worker(1).pid, signal.SIGKILL)  # OOM kill or node loss: parent and pool child
    return "worker-1's processes SIGKILLed" + (" mid-job" if busy else " (no job was running)")


def pool_child_kill(pod: Pod, servers: Servers) -> str:
    busy = pod.wait_running(servers.database_url, 2, BUSY_TIMEOUT)
    worker = pod.worker(1).pid
    children = Path(f"/proc/{worker}/task/{worker}/children").read_text().split()
    if not children:
        return "worker-1 had no pool child"
    os.kill(int(children[0]), signal.SIGKILL)  # the kernel's OOM killer picks the largest process
    return "worker-1's pool child SIGKILLed" + (" mid-job" if busy else " (no job was running)")


def storage_refused(pod: Pod, servers: Servers) -> str:
    _for_a_while(servers.s3.pid, STORAGE_REFUSED_SECONDS, signal.SIGUSR1, signal.SIGUSR2)
    return f"S3 refuses connections for {STORAGE_REFUSED_SECONDS} s"


def storage_hung(pod: Pod, servers: Servers) -> str:
    _for_a_while(servers.s3.pid, STORAGE_HUNG_SECONDS, signal.SIGSTOP, signal.SIGCONT)
    return f"S3 SIGSTOPped for {STORAGE_HUNG_SECONDS} s (connections accepted, never answered)"


FAULTS: dict[str, Callable[[Pod, Servers], str]] = {
    "redis-kill": redis_kill,
    "redis-stop": redis_stop,
    "postgres-stop": postgres_stop,
    "worker-kill": worker_kill,
    "pool-child-kill": pool_child_kill,
    "storage-refused": storage_refused,
    "storage-hung": storage_hung,
}
