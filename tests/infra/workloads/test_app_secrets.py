"""The app's Secrets in the cluster (stack/workloads/app_secrets.py): their values stay secret
Outputs from input to state, even when an input arrives in plain text, and reach no other object."""

from __future__ import annotations

import copy
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pytest

from stack.config.model import StackConfig
from stack.config.rules import StackConfigError
from stack.tools.offline import is_secret, redact, run_program
from stack.workloads import queue_scaling as qs
from stack.workloads.app_secrets import secret_values
from tests.infra.support.stack_files import encode, stack_raw_config
from tests.infra.support.workload_mocks import (
    DATABASE_URL,
    GENERATED_KEY,
    REDIS_TOKEN,
    REDIS_URL,
    SECRET_MARK,
    SECRET_SIG,
    RecordingMonitor,
    run,
    workloads,
)


def test_secret_values_stay_secret(monitor: RecordingMonitor, prod_config: StackConfig) -> None:
    captured: dict[str, pulumi.Resource] = {}

    def capture(args: pulumi.ResourceTransformationArgs) -> None:
        captured[args.name] = args.resource
        return None

    def program() -> dict[str, Any]:
        workloads(prod_config, transformations=[capture])
        secret = captured["app-secrets"]
        queue_auth = captured["app-queue-auth"]
        assert isinstance(secret, k8s.core.v1.Secret) and isinstance(queue_auth, k8s.core.v1.Secret)
        return {
            "is_secret": pulumi.Output.from_input(secret.string_data.is_secret()),
            "string_data": secret.string_data,
            "queue_auth_is_secret": pulumi.Output.from_input(queue_auth.string_data.is_secret()),
            "queue_auth": queue_auth.string_data,
        }

    outputs = run(program)
    # The Secret's output property is a secret Output holding the three values.
    assert outputs["is_secret"] is True
    assert outputs["string_data"] == {
        "DJANGO_SECRET_KEY": GENERATED_KEY,
        "DATABASE_URL": DATABASE_URL,
        "REDIS_URL": REDIS_URL,
    }
    # KEDA's Secret holds the token alone, as a secret too.
    assert outputs["queue_auth_is_secret"] is True
    assert outputs["queue_auth"] == {qs.AUTH_SECRET_KEY: REDIS_TOKEN}
    # What the program passed: the whole stringData is marked secret on the wire.
    for r in monitor.registered:
        if r.type == "kubernetes:core/v1:Secret":
            raw = r.inputs["stringData"]
            assert isinstance(raw, dict) and raw.get(SECRET_SIG) == SECRET_MARK, r.name
    # And nothing of it reaches another object's inputs in plain text.
    for r in monitor.registered:
        if r.type in ("kubernetes:core/v1:Secret", "random:index/randomPassword:RandomPassword"):
            continue
        text = repr(r.inputs)
        for value in (DATABASE_URL, REDIS_URL, GENERATED_KEY, "database-password-value", "redis-token-value"):
            assert value not in text, r.type


def test_secret_values_are_secret_even_from_plain_inputs(monitor: RecordingMonitor) -> None:
    def program() -> dict[str, Any]:
        values = secret_values(secret_key="k", database_url="d", redis_url="r")
        return {"is_secret": pulumi.Output.from_input(values.is_secret()), "values": values}

    outputs = run(program)
    assert outputs["is_secret"] is True
    assert outputs["values"] == {"DJANGO_SECRET_KEY": "k", "DATABASE_URL": "d", "REDIS_URL": "r"}


# --- an app's own secrets (app.secrets), through the whole program --------------------------

APP_SECRET = "app-secret-canary-5f1e"
"""A decrypted app secret, distinguishable wherever it would leak."""


def test_an_app_secret_reaches_only_the_apps_secret_and_only_as_a_secret() -> None:
    raw = copy.deepcopy(stack_raw_config("exp-example"))
    raw["django-eks:app"]["secrets"] = {"NOTES_API_TOKEN": APP_SECRET}
    # As the engine hands over a key holding `secure:` values: decrypted, listed as secret.
    run = run_program(encode(raw), stack="exp-example-secret", secret_keys=["django-eks:app"])
    holders = [
        r for r in run.resources
        if APP_SECRET in repr(r.inputs) or APP_SECRET in repr(r.outputs)
    ]
    # It does reach the app's Secret (so the scan below can fail)...
    assert [(r.type, r.name) for r in holders] == [("kubernetes:core/v1:Secret", "app-secrets")]
    (secret,) = holders
    assert is_secret(secret.inputs["stringData"])
    # ...and nowhere in clear text: no input or output of any resource, no stack output.
    for r in run.resources:
        assert APP_SECRET not in repr(redact(r.inputs)) + repr(redact(r.outputs)), (r.type, r.name)
    assert APP_SECRET not in repr({k: v for k, v in run.outputs.items() if k not in run.secret_outputs})
    assert APP_SECRET not in repr(run.config)


def test_a_plain_app_secret_in_the_stack_file_stops_the_program() -> None:
    raw = copy.deepcopy(stack_raw_config("exp-example"))
    raw["django-eks:app"]["secrets"] = {"NOTES_API_TOKEN": APP_SECRET}
    # Not handed over as a secret: the value was plain text in the stack file.
    with pytest.raises(StackConfigError, match="app.secrets.NOTES_API_TOKEN") as caught:
        run_program(encode(raw), stack="exp-example-plain")
    assert APP_SECRET not in str(caught.value)
