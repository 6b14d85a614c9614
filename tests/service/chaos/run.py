"""A chaos run: the servers that outlive each fault's pod, then the faults one after another."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from private_servers import PrivatePostgres
from service_processes import SERVICE_DIR, Processes, free_port, wait_for

from chaos.faults import Servers
from chaos.harness import Outcome, photo_png, run_fault
from chaos.pod import Timing
from stack.config.loader import config_from_stack_file

IMAGE_SIZE = (1024, 768)


@contextmanager
def servers(workdir: Path) -> Iterator[Servers]:
    """PostgreSQL (migrated) and moto's S3, each in a process of its own, stopped at the end."""
    processes = Processes(tmp_path=workdir, base_env={"PYTHONPATH": str(SERVICE_DIR)})
    postgres = PrivatePostgres(processes)
    try:
        postgres.start()
        migrate = processes.launch("migrate", "migrate", env={"DATABASE_URL": postgres.url,
                                                              "DJANGO_SETTINGS_MODULE": "config.settings.local"})
        if migrate.wait(timeout=300) != 0:
            raise RuntimeError(f"migrate failed:\n{migrate.log()[-3000:]}")
        port = free_port()
        s3 = processes.start("s3", [sys.executable, str(Path(__file__).with_name("s3_process.py")), str(port)])
        wait_for(lambda: "ready" in s3.log(), timeout=60, what="moto's S3")
        yield Servers(postgres=postgres, s3=s3, s3_url=f"http://127.0.0.1:{port}")
    finally:
        processes.stop_all()
        postgres.remove()


def chaos_run(faults: list[str], *, jobs: int, clients: int, scale: float, deadline: float, stack: str,
              workdir: Path, progress=print) -> tuple[Timing, list[Outcome]]:
    timing = Timing(config_from_stack_file(stack), scale)
    images = [photo_png(*IMAGE_SIZE, seed=i) for i in range(jobs)]
    outcomes = []
    with servers(workdir) as running:
        for name in faults:
            started = time.monotonic()
            progress(f"... {name}")
            outcome = run_fault(name, running, timing, images, clients=clients, deadline=deadline, workdir=workdir)
            progress(f"    {'passed' if outcome.passed else 'FAILED: ' + ', '.join(outcome.failures)} "
                     f"({time.monotonic() - started:.0f} s)")
            outcomes.append(outcome)
    return timing, outcomes
