"""The preflight: what AWS would refuse in what the program registers, which no mock checks.

Runs on the resources an offline run recorded (stack.tools.offline) and returns one violation per
broken rule and resource, each naming the rule, the resource and the AWS document that states
the rule. `make plan` reports them as errors.
"""

from __future__ import annotations

from stack.tools.offline import OfflineRun
from stack.tools.preflight.checks import (
    check_deletion,
    check_descriptions,
    check_names,
    check_policies,
    check_tags,
    check_unique_names,
    check_zones,
)
from stack.tools.preflight.rules import RULES, Rule, Violation

__all__ = ["RULES", "Rule", "Violation", "preflight"]


def preflight(run: OfflineRun) -> list[Violation]:
    """Every violation of an AWS-side rule among the resources of an offline run."""
    resources = run.resources
    return [
        *check_descriptions(resources),
        *check_names(resources),
        *check_unique_names(resources, run.stack),
        *check_tags(resources),
        *check_policies(resources),
        *check_zones(resources, dict(run.zones)),
        *check_deletion(resources),
    ]
