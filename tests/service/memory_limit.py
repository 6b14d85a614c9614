"""A container's memory limit for processes started by the tests.

``CgroupMemoryLimit`` is the kernel's own: a memory cgroup (v1 or v2) below the one this process
runs in, which the worker's processes join. Past the limit the kernel's OOM killer SIGKILLs the
process in it with the largest footprint, as it does in a Kubernetes container. Where this
machine does not let us create a memory cgroup, ``RssMemoryLimit`` does what the OOM killer
would: it SIGKILLs any child of the worker whose resident memory passes the limit.
"""

from __future__ import annotations

import itertools
import os
import signal
import threading
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
_names = itertools.count()


def status_mib(pid: int, field: str) -> float:
    """A memory figure of /proc/<pid>/status (VmRSS, VmHWM, ...) in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


def rss_mib(pid: int) -> float:
    try:
        return status_mib(pid, "VmRSS")
    except KeyError:  # a zombie has no resident memory
        return 0.0


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


def _own_memory_cgroup() -> tuple[Path, int] | None:
    """The folder of this process's memory cgroup and the cgroup version, if the memory
    controller is mounted where we can write."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            return CGROUP_ROOT / "memory" / path.lstrip("/"), 1
        if controllers == "" and (CGROUP_ROOT / "cgroup.controllers").exists():
            folder = CGROUP_ROOT / path.lstrip("/")
            if "memory" in (folder / "cgroup.subtree_control").read_text().split():
                return folder, 2
    return None


class CgroupMemoryLimit:
    """The worker's processes in a memory cgroup of their own, limited to ``limit_mib`` of new
    memory (pages they touched before joining stay charged where they were)."""

    def __init__(self, folder: Path, version: int, limit_mib: float) -> None:
        self.folder, self.version = folder, version
        limit = str(int(limit_mib * 1024 * 1024))
        (folder / ("memory.limit_in_bytes" if version == 1 else "memory.max")).write_text(limit)
        if version == 2:
            (folder / "memory.swap.max").write_text("0")

    @classmethod
    def create(cls, limit_mib: float) -> CgroupMemoryLimit | None:
        own = _own_memory_cgroup()
        if own is None:
            return None
        parent, version = own
        folder = parent / f"svc-test-{os.getpid()}-{next(_names)}"
        try:
            folder.mkdir()
        except OSError:
            return None
        return cls(folder, version, limit_mib)

    def join(self, pids: list[int]) -> None:
        for pid in pids:
            (self.folder / "cgroup.procs").write_text(str(pid))

    def kills(self) -> int:
        events = "memory.oom_control" if self.version == 1 else "memory.events"
        for line in (self.folder / events).read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return 0

    def remove(self) -> None:
        # Whatever still runs in it goes back to our own cgroup; an empty cgroup can be removed.
        for pid in (self.folder / "cgroup.procs").read_text().split():
            try:
                (self.folder.parent / "cgroup.procs").write_text(pid)
            except OSError:
                pass
        try:
            self.folder.rmdir()
        except OSError:
            pass

    def __str__(self) -> str:
        return f"memory cgroup v{self.version} {self.folder}"


class RssMemoryLimit:
    """What the kernel would do past a memory limit: SIGKILL a child whose RSS passes it."""

    def __init__(self, parent_pid: int, limit_mib: float) -> None:
        self.parent_pid, self.limit_mib = parent_pid, limit_mib
        self.killed: set[int] = set()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while not self.stopped.wait(0.01):
            for pid in children(self.parent_pid):
                try:
                    if pid not in self.killed and rss_mib(pid) > self.limit_mib:
                        os.kill(pid, signal.SIGKILL)
                        self.killed.add(pid)
                except (FileNotFoundError, ProcessLookupError):
                    pass

    def kills(self) -> int:
        return len(self.killed)

    def remove(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=5)

    def __str__(self) -> str:
        return f"RSS watch on the children of {self.parent_pid} (no writable memory cgroup here)"
