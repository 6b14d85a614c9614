"""Liveness probe for Celery workers: is the heartbeat file fresh?

    python -m config.heartbeat --max-age 60

The worker touches the file from its parent process (see ``config.celery_app``).
This is far cheaper than ``celery inspect ping``, which spends seconds of CPU and
fails, restarting healthy workers, whenever the broker is briefly unreachable.
"""

import argparse
import os
import sys
import time
from pathlib import Path


def touch(path: str) -> None:
    Path(path).touch()


def remove(path: str) -> None:
    Path(path).unlink(missing_ok=True)


def age_seconds(path: str, *, now: float | None = None) -> float:
    """Seconds since the heartbeat file was last touched; raises FileNotFoundError."""
    return (time.time() if now is None else now) - os.stat(path).st_mtime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m config.heartbeat", description=__doc__.splitlines()[0])
    parser.add_argument("--max-age", type=float, default=60.0, help="seconds (default: 60)")
    parser.add_argument("--file", help="heartbeat file (default: the CELERY_HEARTBEAT_FILE setting)")
    args = parser.parse_args(argv)
    path = args.file
    if path is None:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
        from django.conf import settings

        path = settings.CELERY_HEARTBEAT_FILE
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
