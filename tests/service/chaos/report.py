"""The run's table in markdown, and the settings it ran with."""

from __future__ import annotations

from chaos.harness import RECOVERY_LIMIT, Outcome
from chaos.pod import WORKERS, Timing

COLUMNS = ("fault", "submitted", "accepted", "refused (status x answers)", "gave up", "done", "failed", "stuck",
           "duplicated", "redelivered", "restarts", "healthy-worker restarts", "last job after fault end", "pass")


def settings(timing: Timing, *, jobs: int, clients: int, deadline: float) -> dict[str, object]:
    return {"jobs": jobs, "clients": clients, "workers": WORKERS, "scale": timing.scale,
            "kubelet": timing.describe(), "stuck_after_seconds": deadline, "recovery_limit_seconds": RECOVERY_LIMIT}


def markdown(run: dict[str, object], outcomes: list[Outcome]) -> str:
    lines = [f"{run['jobs']} jobs per burst from {run['clients']} clients; {run['workers']} workers; "
             f"{run['kubelet']}. Stuck: not ended {run['stuck_after_seconds']:g} s after the fault's end. "
             f"Pass: 0 stuck, 0 duplicated, no restart of a healthy worker, last job ended within "
             f"{RECOVERY_LIMIT:.0f} s of the fault's end.", "",
             "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for o in outcomes:
        refused = ", ".join(f"{status} x{count}" for status, count in sorted(o.refused.items())) or "-"
        restarts = ", ".join(f"{r['container']} ({r['reason']}, {r['after_fault_end']:+.0f} s)" for r in o.restarts)
        recovery = f"{o.recovery_seconds:.0f} s" if o.recovery_seconds is not None else f"> {run['stuck_after_seconds']:g} s"
        cells = [o.fault, o.submitted, o.accepted, refused, o.gave_up, o.done, o.failed, o.stuck, o.duplicated,
                 o.redelivered, restarts or "-", o.healthy_restarts, recovery,
                 "yes" if o.passed else "no: " + ", ".join(o.failures)]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    lines += ["", "Faults:"] + [f"- {o.fault}: {o.what} ({o.fault_seconds:g} s)" for o in outcomes]
    healthy = [(o.fault, r) for o in outcomes for r in o.restarts if r["healthy"]]
    if healthy:
        lines += ["", "Restarts of a healthy worker:"]
        lines += [f"- {fault}: {r['container']} {r['after_fault_end']:+.0f} s: {r['why']}" for fault, r in healthy]
    return "\n".join(lines)
