"""The app's Secrets in the cluster: the generated Django key with the database and Redis URLs
and an app's own secrets (app.secrets: `secure:` values of the stack file, which the engine
decrypts for the program) in every app pod's environment, and the Redis token alone for KEDA's
queue-length scaler.

Their values only ever travel as secret Outputs: in the state, `data` and `stringData` stay
encrypted even when an input arrived in plain text.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from stack.workloads import app_config
from stack.workloads import queue_scaling as qs
from stack.workloads.order import Children


def _encrypted(options: pulumi.ResourceOptions) -> pulumi.ResourceOptions:
    """`options`, and data and stringData secret in the state: the SDK already marks them so,
    repeated so a future change of SDK defaults cannot leak them in plain text."""
    return pulumi.ResourceOptions.merge(
        options, pulumi.ResourceOptions(additional_secret_outputs=["data", "stringData"])
    )


def secret_values(
    *,
    secret_key: pulumi.Input[str],
    database_url: pulumi.Input[str],
    redis_url: pulumi.Input[str],
    app_secrets: Mapping[str, str] | None = None,
) -> pulumi.Output[dict[str, str]]:
    """The Secret's stringData, always a secret Output, even if an input arrived in plain text.

    `app_secrets` are the app's own, plain only inside this process: the Output wrapping them is
    secret from the start (Output.secret), so the engine stores them encrypted and shows them as
    [secret]; pulumi_kubernetes 4.34 core/v1/Secret.py:229-235 wraps `data` and `stringData` in
    Output.secret too and lists both as additional secret outputs."""
    extra = dict(app_secrets or {})
    values = pulumi.Output.all(secret_key, database_url, redis_url).apply(
        lambda v: {**dict(zip(app_config.SECRET_KEYS, (str(x) for x in v), strict=True)), **extra}
    )
    return pulumi.Output.secret(values)


def auto_named(metadata: dict[str, Any]) -> Any:
    """`metadata` without its name, so Pulumi generates one from the resource name."""
    return {key: value for key, value in metadata.items() if key != "name"}


def register_app_secret(
    name: str,
    children: Children,
    *,
    database_url: pulumi.Input[str],
    redis_url: pulumi.Input[str],
    app_secrets: Mapping[str, str] | None = None,
) -> k8s.core.v1.Secret:
    """The app's Secret (role "secret"), auto-named like the ConfigMap, with a Django secret key
    generated once and kept in the state."""
    secret_key = random.RandomPassword(
        f"{name}-django-secret-key",
        length=64,
        special=False,
        opts=pulumi.ResourceOptions(parent=children.parent),
    )
    placeholder_secret = app_config.secret(app_config.PLACEHOLDER_SECRETS)
    secret = k8s.core.v1.Secret(
        f"{name}-secrets",
        metadata=auto_named(placeholder_secret["metadata"]),
        type=placeholder_secret["type"],
        string_data=cast(
            Any,
            secret_values(
                secret_key=secret_key.result, database_url=database_url, redis_url=redis_url, app_secrets=app_secrets
            ),
        ),
        opts=_encrypted(children.after("secret")),
    )
    children.record("secret", secret)
    return secret


def register_queue_auth_secret(name: str, children: Children, *, redis_auth_token: pulumi.Input[str]) -> None:
    """The Secret KEDA's TriggerAuthentication reads (role "queue-auth-secret"): the token alone."""
    placeholder = qs.auth_secret(qs.PLACEHOLDER_TOKEN)
    auth_secret = k8s.core.v1.Secret(
        f"{name}-queue-auth",
        metadata=placeholder["metadata"],
        type=placeholder["type"],
        string_data=cast(
            Any,
            pulumi.Output.secret(
                pulumi.Output.from_input(redis_auth_token).apply(lambda token: {qs.AUTH_SECRET_KEY: str(token)})
            ),
        ),
        opts=_encrypted(children.after("queue-auth-secret")),
    )
    children.record("queue-auth-secret", auth_secret)
