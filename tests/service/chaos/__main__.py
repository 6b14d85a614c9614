"""The chaos run of issue 18 (`make chaos`); see chaos/__init__.py and docs/testing.md."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
for path in (ROOT / "tests" / "service", ROOT / "infra", ROOT / "service"):
    sys.path.insert(0, str(path))

from chaos import report  # noqa: E402
from chaos.faults import FAULTS  # noqa: E402
from chaos.harness import RECOVERY_LIMIT  # noqa: E402
from chaos.run import chaos_run  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python tests/service/chaos", description=__doc__.splitlines()[0])
    parser.add_argument("--fault", action="append", choices=list(FAULTS), help="repeatable; default: every fault")
    parser.add_argument("--jobs", type=int, default=50, help="jobs per burst (default: 50)")
    parser.add_argument("--clients", type=int, default=8, help="clients submitting them at once (default: 8)")
    parser.add_argument("--scale", type=float, default=3.0,
                        help="divide the kubelet's liveness timing by this (default: 3)")
    parser.add_argument("--deadline", type=float, default=RECOVERY_LIMIT + 60,
                        help="seconds after a fault's end when a job not ended counts as stuck "
                             f"(default: {RECOVERY_LIMIT + 60:.0f})")
    parser.add_argument("--stack", default="dev", help="the stack whose settings the pods run with (default: dev)")
    default_json = Path(tempfile.gettempdir()) / "chaos-report.json"
    parser.add_argument("--json", type=Path, default=default_json,
                        help=f"where the results go as JSON (default: {default_json})")
    args = parser.parse_args(argv)
    for name, value in (("--jobs", args.jobs), ("--clients", args.clients)):
        if value < 1:
            parser.error(f"{name} must be at least 1, got {value}")
    if args.scale <= 0 or args.deadline <= 0:
        parser.error("--scale and --deadline must be positive")
    with tempfile.TemporaryDirectory(prefix="chaos-") as workdir:
        timing, outcomes = chaos_run(args.fault or list(FAULTS), jobs=args.jobs, clients=args.clients,
                                     scale=args.scale, deadline=args.deadline, stack=args.stack,
                                     workdir=Path(workdir), progress=lambda line: print(line, file=sys.stderr,
                                                                                         flush=True))
    settings = report.settings(timing, jobs=args.jobs, clients=args.clients, deadline=args.deadline)
    print(report.markdown(settings, outcomes))
    args.json.write_text(json.dumps({"settings": settings, "faults": [o.as_json() for o in outcomes]}, indent=2))
    print(f"\n(JSON: {args.json})")
    return 0 if all(o.passed for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
