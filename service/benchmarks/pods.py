"""Pods on one machine: a process group pinned to its own CPUs, with its CPU time read from /proc.

A pod here is what it is in the cluster as far as CPU goes: its processes run on
the cores it was given and nowhere else (taskset), and a fractional share of a
core is enforced with a CFS quota (a cgroup v1 or v2 `cpu` group) where this
machine lets us create one. Everything a pod starts stays in its session, so its
CPU time is the sum over that session.
"""

import math
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
CFS_PERIOD_US = 100_000
CGROUP_V1_CPU = Path("/sys/fs/cgroup/cpu")
CGROUP_V2 = Path("/sys/fs/cgroup")


def machine_cpus() -> list[int]:
    return sorted(os.sched_getaffinity(0))


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces: split after its closing parenthesis.
    return raw[raw.rindex(")") + 2 :].split()


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU of one process (threads included)."""
    fields = _stat_fields(pid)
    if fields is None:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _session_processes(session_id: int) -> Iterator[tuple[Path, list[str]]]:
    """(/proc/<pid>, its stat fields) of every live process of a session."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is not None and int(fields[3]) == session_id:
            yield entry, fields


def session_cpu_seconds(session_id: int) -> float:
    """CPU of every live process of a session, plus what its reaped children used."""
    return sum((int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])) / CLOCK_TICKS
               for _, fields in _session_processes(session_id))


def session_memory_mib(session_id: int) -> float:
    """Proportional set size of the session's live processes (/proc/<pid>/smaps_rollup ``Pss``), MiB.

    Pages the processes share (a forked master's code, the interpreter) are divided among them, so
    the sum is what the session adds to the machine, not the sum of RSS."""
    total_kib = 0
    for entry, _ in _session_processes(session_id):
        try:
            for line in (entry / "smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total_kib += int(line.split()[1])
        except OSError:
            continue
    return round(total_kib / 1024, 1)


def session_runqueue_wait_seconds(session_id: int) -> float:
    """Time the session's live threads spent runnable but waiting for a CPU (/proc/.../schedstat).

    On a machine shared with other work this is where a pinned pod's time goes: its core was busy
    with someone else's process.
    """
    total = 0
    for entry, _ in _session_processes(session_id):
        try:
            for task in (entry / "task").iterdir():
                total += int((task / "schedstat").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return total / 1e9


def _cpu_quota_group(name: str, cpus: float) -> Path | None:
    """A cgroup limiting its members to ``cpus`` cores, or None where cgroups are not writable."""
    try:
        if (CGROUP_V1_CPU / "cpu.cfs_quota_us").exists():
            group = CGROUP_V1_CPU / name
            group.mkdir(exist_ok=True)
            (group / "cpu.cfs_period_us").write_text(str(CFS_PERIOD_US))
            (group / "cpu.cfs_quota_us").write_text(str(int(cpus * CFS_PERIOD_US)))
            return group
        if (CGROUP_V2 / "cgroup.controllers").exists():
            group = CGROUP_V2 / name
            group.mkdir(exist_ok=True)
            (group / "cpu.max").write_text(f"{int(cpus * CFS_PERIOD_US)} {CFS_PERIOD_US}")
            return group
    except OSError:
        return None
    return None


@dataclass
class Pod:
    """One pod: a command in its own session, pinned to ``cpu_ids`` (and to ``cpus`` cores of them)."""

    name: str
    argv: Sequence[str]
    cpu_ids: Sequence[int]
    cpus: float
    env: dict[str, str]
    cwd: Path
    log_path: Path
    popen: subprocess.Popen[bytes] | None = None
    quota_group: Path | None = None
    notes: list[str] = field(default_factory=list)

    def start(self) -> "Pod":
        pinned = ["taskset", "--cpu-list", ",".join(map(str, self.cpu_ids)), *self.argv]
        with open(self.log_path, "ab") as log:
            self.popen = subprocess.Popen(pinned, cwd=self.cwd, env=self.env, stdout=log,
                                          stderr=subprocess.STDOUT, start_new_session=True)
        if not math.isclose(self.cpus, len(self.cpu_ids)):
            self.quota_group = _cpu_quota_group(f"django-eks-bench-{os.getpid()}-{self.name}", self.cpus)
            if self.quota_group is None:
                self.notes.append(f"{self.name}: no writable cgroup here, {self.cpus} CPUs not enforced "
                                  f"(pinned to {len(self.cpu_ids)} cores)")
            else:
                (self.quota_group / "cgroup.procs").write_text(str(self.popen.pid))
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None, f"pod {self.name} not started"
        return self.popen.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def alive(self) -> bool:
        if self.popen is None or self.popen.poll() is not None:
            raise RuntimeError(f"pod {self.name} exited:\n{self.log()[-3000:]}")
        return True

    def cpu_seconds(self) -> float:
        return session_cpu_seconds(self.pid)

    def runqueue_wait_seconds(self) -> float:
        return session_runqueue_wait_seconds(self.pid)

    def wait_until(self, condition: Callable[[], bool], *, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not (self.alive() and condition()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"pod {self.name}: timed out after {timeout}s waiting for {what}:\n"
                                   f"{self.log()[-3000:]}")
            time.sleep(0.1)

    def stop(self, timeout: float = 30) -> None:
        if self.popen is None:
            return
        if self.popen.poll() is None:
            _signal_group(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        _signal_group(self.pid, signal.SIGKILL)
        self.popen.wait(timeout=10)
        if self.quota_group is not None:
            try:
                self.quota_group.rmdir()
            except OSError:
                pass


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
