"""Wait until the pod's EKS Pod Identity credentials can be had, then exit 0.

    python -m config.pod_credentials --timeout 120

The migration Job runs this as an init container, before ``manage.py migrate``. EKS Pod
Identity associations are eventually consistent: "may take several seconds to be effective
after the API call returns successfully" (aws eks create-pod-identity-association,
https://docs.aws.amazon.com/cli/latest/reference/eks/create-pod-identity-association.html), and
the Job is created right after its association. Two things can go wrong meanwhile:

* EKS sets the credential variables (``AWS_CONTAINER_CREDENTIALS_FULL_URI``,
  ``AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE``) only in pods created while the association is in
  effect. A pod created before has none and never will: it exits NOT_INJECTED at once, and
  the Job's podFailurePolicy ignores that exit code (it does not count against backoffLimit),
  so the Job controller creates a new pod, which gets them.
* The variables are set, but the Pod Identity agent (169.254.170.23) cannot get credentials
  for the association yet and answers with an error. Waiting here costs nothing: the agent is
  asked again every ``--interval`` seconds until it answers, for at most ``--timeout`` seconds
  (then NOT_INJECTED as well: a new pod tries again, within the Job's activeDeadlineSeconds).

Either way the migration itself starts only with working credentials, and its one retry is
kept for a real failure. Credentials are resolved exactly as the app resolves them: botocore's
container provider, the one that reads those variables.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Mapping

NOT_INJECTED = 75
"""Exit code (EX_TEMPFAIL) for "no Pod Identity credentials yet": the Job retries the pod
without counting it (podFailurePolicy action Ignore on this code)."""

FULL_URI = "AWS_CONTAINER_CREDENTIALS_FULL_URI"


def fetch_once(environ: Mapping[str, str]) -> str | None:
    """None when the agent handed out credentials; otherwise why it did not."""
    from botocore.credentials import ContainerProvider
    from botocore.exceptions import BotoCoreError

    try:
        credentials = ContainerProvider(environ=dict(environ)).load()
    except (BotoCoreError, OSError, KeyError, ValueError) as error:
        return f"{type(error).__name__}: {error}"
    if credentials is None:
        return f"{FULL_URI} is not set"
    frozen = credentials.get_frozen_credentials()
    return None if frozen.access_key and frozen.secret_key else "empty credentials"


def wait(
    environ: Mapping[str, str],
    *,
    timeout: float,
    interval: float,
    fetch: Callable[[Mapping[str, str]], str | None] = fetch_once,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[bool, str]:
    """(True, message) once credentials come; (False, the last reason) when they will not."""
    if FULL_URI not in environ:
        return False, (
            f"{FULL_URI} is not set: the pod was created before its Pod Identity association "
            "took effect (or its service account has none)"
        )
    deadline = clock() + timeout
    attempts = 0
    while True:
        attempts += 1
        reason = fetch(environ)
        if reason is None:
            return True, f"Pod Identity credentials after {attempts} attempt(s)"
        if clock() + interval > deadline:
            return False, f"no Pod Identity credentials after {attempts} attempt(s) in {timeout:g}s: {reason}"
        sleep(interval)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m config.pod_credentials", description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the agent (default: 120)")
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between attempts (default: 2)")
    args = parser.parse_args(argv)
    ok, message = wait(os.environ, timeout=args.timeout, interval=args.interval)
    print(message, file=sys.stdout if ok else sys.stderr, flush=True)
    return 0 if ok else NOT_INJECTED


if __name__ == "__main__":
    sys.exit(main())
