"""SINCE and UNTIL: a duration before now (`2h`, `30m`, `90s`, `1d`) or a time (ISO 8601)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

DEFAULT_SINCE = "1h"
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class WindowError(ValueError):
    """A SINCE or UNTIL that is neither a duration nor a time, or a window that ends before it starts."""


def point(value: str, now: datetime, name: str) -> datetime:
    """`value` as a UTC time: `now` minus a duration, or an ISO 8601 time (no zone: UTC)."""
    text = value.strip()
    duration = _DURATION.match(text)
    if duration:
        return now - timedelta(seconds=float(duration.group(1)) * _UNITS[duration.group(2)])
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise WindowError(
            f"{name}={value!r} is neither a duration before now (like 2h, 30m, 90s, 1d) "
            "nor an ISO 8601 time (like 2026-12-02T14:00:00Z)"
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def window(since: str | None, until: str | None, now: datetime | None = None) -> tuple[datetime, datetime]:
    """(start, end) of the window in UTC; default the last hour."""
    current = now or datetime.now(UTC)
    start = point(since or DEFAULT_SINCE, current, "SINCE")
    end = current if until is None else point(until, current, "UNTIL")
    if end > current:
        end = current
    if start >= end:
        raise WindowError(f"the window is empty: SINCE {start.isoformat()} is not before UNTIL {end.isoformat()}")
    return start, end
