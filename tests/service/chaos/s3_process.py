"""moto's S3 in a process of its own, so that a fault can take it away like an S3 outage.

    python tests/service/chaos/s3_process.py PORT

It serves on 127.0.0.1:PORT and prints "ready" once listening. SIGUSR1 closes the listening
socket (clients get "connection refused": storage refused), SIGUSR2 listens again on the same
port; the stored buckets and objects live in this process and survive both. SIGSTOP freezes
it (connections are accepted by the kernel and never answered: storage hung).
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from s3_server import S3Server  # noqa: E402


def main(port: int) -> None:
    server = S3Server().start(port)
    changes: list[int] = []

    def on_signal(signum: int, _frame: object) -> None:
        changes.append(signum)

    signal.signal(signal.SIGUSR1, on_signal)
    signal.signal(signal.SIGUSR2, on_signal)
    print("ready", flush=True)
    while True:
        signal.pause()
        while changes:
            if changes.pop(0) == signal.SIGUSR1:
                server.stop()
                server._server = None  # noqa: SLF001 - stopped: the next SIGUSR2 makes a new one
                print("refusing", flush=True)
            elif server._server is None:  # noqa: SLF001
                server.start(port)
                print("listening", flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]))
