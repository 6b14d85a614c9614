"""A small evaluator of IAM policy documents, for tests that ask "may this role do that?".

It implements the part of AWS's evaluation logic that same-account requests go through
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html):

* an explicit Deny in any applicable policy wins;
* otherwise an Allow in the identity policies or in the resource policy allows (same account:
  either is enough);
* otherwise the request is implicitly denied.

A statement applies when its Action (or NotAction), Resource (or NotResource), Principal (resource
policies only) and every Condition match. `*` and `?` are wildcards in actions and resources;
actions compare case-insensitively, resource ARNs case-sensitively. Conditions: the operators
below, several keys ANDed, several values ORed, and a key absent from the request never
matches (no `...IfExists` forms). An operator it does not know raises instead of guessing.

Not modelled (none of the documents under test use them): permission boundaries, SCPs/RCPs,
session policies, cross-account access, policy variables, `NotPrincipal`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Decision = Literal["allowed", "explicitly denied", "implicitly denied"]


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def wildcard_match(pattern: str, value: str, *, case_sensitive: bool) -> bool:
    """IAM wildcards: `*` any run of characters (including `/` and `:`), `?` one character."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    flags = 0 if case_sensitive else re.IGNORECASE
    return re.fullmatch(regex, value, flags) is not None


def _string_equals(expected: str, actual: str) -> bool:
    return expected == actual


def _string_like(expected: str, actual: str) -> bool:
    return wildcard_match(expected, actual, case_sensitive=True)


def _bool(expected: str, actual: str) -> bool:
    return str(expected).lower() == str(actual).lower()


CONDITION_OPERATORS: dict[str, Callable[[str, str], bool]] = {
    "StringEquals": _string_equals,
    "StringLike": _string_like,
    "ArnEquals": _string_equals,
    "ArnLike": _string_like,
    "Bool": _bool,
}


class UnsupportedPolicy(ValueError):
    """The document uses something this evaluator does not implement."""


@dataclass(frozen=True)
class Request:
    action: str
    resource: str
    principal: str = ""
    """The calling role's ARN (matched against resource policies' Principal)."""
    context: Mapping[str, str] = field(default_factory=lambda: {"aws:SecureTransport": "true"})
    """Condition keys of the request; by default a request over TLS."""


def _conditions_hold(conditions: Mapping[str, Mapping[str, Any]], context: Mapping[str, str]) -> bool:
    for operator, tests in conditions.items():
        compare = CONDITION_OPERATORS.get(operator)
        if compare is None:
            raise UnsupportedPolicy(f"condition operator {operator!r} is not implemented")
        for key, expected in tests.items():
            actual = context.get(key)
            if actual is None or not any(compare(str(e), actual) for e in _as_list(expected)):
                return False
    return True


def _principal_matches(principal: Any, caller: str) -> bool:
    if principal == "*":
        return True
    if isinstance(principal, Mapping):
        return any(p == "*" or p == caller for p in _as_list(principal.get("AWS")))
    return False


def _matches_any(patterns: Iterable[str], value: str, *, case_sensitive: bool) -> bool:
    return any(wildcard_match(p, value, case_sensitive=case_sensitive) for p in patterns)


def statement_applies(statement: Mapping[str, Any], request: Request, *, resource_policy: bool) -> bool:
    if "NotPrincipal" in statement:
        raise UnsupportedPolicy("NotPrincipal is not implemented")
    if resource_policy and not _principal_matches(statement.get("Principal"), request.principal):
        return False
    if "Action" in statement:
        if not _matches_any(_as_list(statement["Action"]), request.action, case_sensitive=False):
            return False
    elif _matches_any(_as_list(statement.get("NotAction")), request.action, case_sensitive=False):
        return False
    if "Resource" in statement:
        if not _matches_any(_as_list(statement["Resource"]), request.resource, case_sensitive=True):
            return False
    elif _matches_any(_as_list(statement.get("NotResource")), request.resource, case_sensitive=True):
        return False
    return _conditions_hold(statement.get("Condition", {}), request.context)


def evaluate(
    request: Request,
    *,
    identity_policies: Iterable[Mapping[str, Any]] = (),
    resource_policy: Mapping[str, Any] | None = None,
) -> Decision:
    applicable: list[tuple[Mapping[str, Any], bool]] = [
        (s, False) for doc in identity_policies for s in _as_list(doc.get("Statement"))
    ]
    if resource_policy is not None:
        applicable += [(s, True) for s in _as_list(resource_policy.get("Statement"))]
    effects = {
        s["Effect"] for s, is_resource in applicable if statement_applies(s, request, resource_policy=is_resource)
    }
    if "Deny" in effects:
        return "explicitly denied"
    if "Allow" in effects:
        return "allowed"
    return "implicitly denied"


__all__ = ["Request", "UnsupportedPolicy", "evaluate", "wildcard_match"]
