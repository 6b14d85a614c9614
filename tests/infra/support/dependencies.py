"""The order the engine gives an offline run's resources, from their recorded dependencies."""

from __future__ import annotations

from stack.tools.offline import OfflineRun, RecordedResource


def comes_after(run: OfflineRun, later: RecordedResource, earlier: RecordedResource) -> bool:
    """Whether `later` registers only after `earlier`'s step (and is destroyed before it): a
    path of recorded dependencies leads from one to the other."""
    seen: set[str] = set()
    pending = list(later.dependencies)
    while pending:
        urn = pending.pop()
        if urn == earlier.urn:
            return True
        if urn not in seen:
            seen.add(urn)
            pending.extend(run.by_urn(urn).dependencies)
    return False
