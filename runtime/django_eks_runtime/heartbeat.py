"""Liveness probe for Celery workers: is the heartbeat file fresh?

    python -m django_eks_runtime.heartbeat --max-age 60

The worker touches the file from its parent process (``django_eks_runtime.worker.Heartbeat``), and only
while it makes progress: it can take a message from the broker, or every message it holds is
a task it is running (which the task time limit bounds). A worker that holds a delivery no
task will ever finish (its acknowledgement was lost when Redis hung past the socket timeout)
consumes nothing again; its file goes stale and kubelet restarts it.
This is far cheaper than ``celery inspect ping``, which spends seconds of CPU and
fails, restarting healthy workers, whenever the broker is briefly unreachable.
"""

import argparse
import os
import sys
import time
from collections.abc import Iterable, Set
from pathlib import Path
from typing import Any

DEFAULT_FILE = "/tmp/celery-worker-heartbeat"
DEFAULT_INTERVAL_SECONDS = 10
"""Unless the Django settings name others (``CELERY_HEARTBEAT_FILE``, ``CELERY_HEARTBEAT_INTERVAL``)."""


def heartbeat_file() -> str:
    """The file the worker touches: the ``CELERY_HEARTBEAT_FILE`` setting, else the variable of
    that name (the platform's ConfigMap sets it), else /tmp's."""
    from django.conf import settings

    default = os.environ.get("CELERY_HEARTBEAT_FILE", "").strip() or DEFAULT_FILE
    if not settings.configured and not os.environ.get("DJANGO_SETTINGS_MODULE"):
        return default
    return str(getattr(settings, "CELERY_HEARTBEAT_FILE", default))


def touch(path: str) -> None:
    Path(path).touch()


def remove(path: str) -> None:
    Path(path).unlink(missing_ok=True)


def stranded_deliveries(qos: Any, requests: Iterable[Any]) -> Set[Any] | None:
    """Delivery tags the broker channel counts against the prefetch limit with no task behind them.

    ``qos`` is the task channel's kombu QoS, ``requests`` the worker's reserved requests (those
    received and not yet finished, running or not). A tag stays in the QoS until its
    acknowledgement reaches Redis; when that fails (kombu logs "Couldn't ack" and carries on),
    the slot is never given back, and with every slot stranded the worker never fetches again.
    None when this kombu's QoS does not expose its deliveries.
    """
    delivered = getattr(qos, "_delivered", None)
    if delivered is None:
        return None
    acked = getattr(qos, "_dirty", ())
    held = set(delivered) - set(acked)
    return held - {request.message.delivery_tag for request in requests}


def age_seconds(path: str, *, now: float | None = None) -> float:
    """Seconds since the heartbeat file was last touched; raises FileNotFoundError."""
    return (time.time() if now is None else now) - os.stat(path).st_mtime


def main(argv: list[str] | None = None, prog: str = "python -m django_eks_runtime.heartbeat") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--max-age", type=float, default=60.0, help="seconds (default: 60)")
    parser.add_argument("--file", help="heartbeat file (default: the CELERY_HEARTBEAT_FILE setting)")
    args = parser.parse_args(argv)
    path: str = args.file if args.file is not None else heartbeat_file()
    try:
        age = age_seconds(path)
    except FileNotFoundError:
        print(f"unhealthy: heartbeat file {path} does not exist", file=sys.stderr)
        return 1
    if age > args.max_age:
        print(f"unhealthy: heartbeat file {path} is {age:.0f}s old (max {args.max_age:.0f}s)", file=sys.stderr)
        return 1
    print(f"ok: heartbeat {age:.1f}s old")
    return 0


if __name__ == "__main__":
    sys.exit(main())
