"""Private PostgreSQL instances for tests that stop or restart the database.

The shared PostgreSQL on 5432 is never touched: each instance has its own data
directory under the test's tmp_path and its own free port, and the Processes
fixture kills it at teardown like any other process it started.
"""

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from service_processes import Proc, Processes, free_port, wait_for
from throwaway_servers import as_unprivileged, pg_binary


class PrivatePostgres:
    def __init__(self, processes: Processes) -> None:
        self.processes = processes
        # Not under pytest's tmp_path: that is private to the test user (0700).
        self.data_dir = Path(tempfile.mkdtemp(prefix="svc-test-pg-"))
        if os.geteuid() == 0:
            account = pwd.getpwnam("postgres")
            os.chown(self.data_dir, account.pw_uid, account.pw_gid)
        self.port = free_port()
        self.proc: Proc | None = None
        subprocess.run(as_unprivileged([pg_binary("initdb"), "-D", str(self.data_dir), "-U", "postgres",
                                        "--auth", "trust", "--no-sync", "-E", "UTF8"]),
                       check=True, capture_output=True, timeout=120)

    def remove(self) -> None:
        shutil.rmtree(self.data_dir, ignore_errors=True)

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        self.proc = self.processes.start(
            f"postgres-{self.port}",
            as_unprivileged([pg_binary("postgres"), "-D", str(self.data_dir), "-p", str(self.port),
                             "-h", "127.0.0.1", "-k", str(self.data_dir), "-c", "fsync=off",
                             "-c", "max_connections=50"]),
            cwd=self.data_dir,
        )
        wait_for(self.accepting, timeout=30, what=f"postgres on {self.port}")

    def accepting(self) -> bool:
        result = subprocess.run([pg_binary("pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                                capture_output=True)
        return result.returncode == 0

    def stop(self) -> None:
        """A fast shutdown (SIGINT), as a restart or failover does: open connections are cut."""
        assert self.proc is not None
        self.proc.popen.send_signal(signal.SIGINT)
        self.proc.wait(timeout=30)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()
