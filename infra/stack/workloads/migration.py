"""The migration Job: `manage.py migrate` once per image, before the Deployments roll out, after
an init container that waits for the pod's Pod Identity credentials."""

from __future__ import annotations

import hashlib
from typing import Any

from stack.config.model import StackConfig
from stack.config.names import MIGRATE
from stack.workloads.pods import (
    CONFIG_MAP,
    SECRET,
    TMP_MOUNT,
    Manifest,
    container_security_context,
    env_from,
    env_list,
    launch_command,
    metadata,
    pod_spec,
    pod_template,
    resources,
)

MIGRATION_DEADLINE_SECONDS = 900
"""Longest a migration may run before the Job (and so `pulumi up`) fails."""

MIGRATION_BACKOFF_LIMIT = 1
"""One retry covers a transient failure (a database failover); a real migration error fails
twice quickly instead of hammering the database."""

WAIT_FOR_CREDENTIALS = "wait-for-credentials"
"""The migration pod's init container: `migrate` starts only once the pod has its Pod Identity
credentials (service/config/pod_credentials.py)."""
CREDENTIALS_TIMEOUT_SECONDS = 120
"""How long one pod waits for the Pod Identity agent to hand out its credentials."""
CREDENTIALS_NOT_INJECTED_EXIT_CODE = 75
"""config.pod_credentials.NOT_INJECTED: no credentials yet; the Job replaces the pod uncounted."""


def migration_job_name(image: str) -> str:
    """One Job per image: a new image means a new Job, the same image never migrates twice."""
    digest = hashlib.sha256(image.encode()).hexdigest()[:12]
    return f"{MIGRATE}-{digest}"


def migration_job(
    config: StackConfig,
    image: str,
    *,
    config_map_name: str = CONFIG_MAP,
    secret_name: str = SECRET,
) -> Manifest:
    """`manage.py migrate` for `image`, run before the Deployments roll out.

    No `ttlSecondsAfterFinished`: Pulumi keeps the Job in its state, and a Job the cluster
    deleted by TTL would be seen as missing on the next refresh and created again, running the
    migrations again. The finished Job stays until the image changes; then Pulumi creates the
    next one and deletes the old one.
    """
    web = config.web
    container = {
        "name": MIGRATE,
        "image": image,
        "command": launch_command(MIGRATE, config.app),
        "envFrom": env_from(config_map_name, secret_name),
        "resources": resources(web.cpu_millicores, web.memory_mib),
        "securityContext": container_security_context(),
        "volumeMounts": [dict(TMP_MOUNT)],
    }
    spec = pod_spec(
        component=MIGRATE,
        pool_name=web.node_pool,
        pool=config.node_pools[web.node_pool],
        container=container,
        termination_grace_seconds=30,
        restart_policy="Never",
        spread=False,
        # The demo's migrations write to the bucket (storage.py, POD_ACCESS); an app's run
        # `manage.py migrate` alone, without waiting for credentials it may not have.
        init_containers=[credentials_wait_container(image)] if config.app is None else None,
    )
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            **metadata(migration_job_name(image), MIGRATE),
            "annotations": {
                # A failed migration leaves an unready Job; without this, the next `pulumi up`
                # would keep waiting on it instead of running the migration again.
                "pulumi.com/replaceUnready": "true",
            },
        },
        "spec": {
            "backoffLimit": MIGRATION_BACKOFF_LIMIT,
            "activeDeadlineSeconds": MIGRATION_DEADLINE_SECONDS,
            **(credentials_failure_policy() if config.app is None else {}),
            "template": pod_template(MIGRATE, spec),
        },
    }


def credentials_failure_policy() -> dict[str, Any]:
    """The Job's rule for its credentials wait (the demo's only)."""
    return {
        # A pod that never got its credentials (created while the Pod Identity association
        # was not yet in effect) is replaced without spending the one retry, which stays
        # for a failure of the migration itself; activeDeadlineSeconds bounds the attempts.
        # https://kubernetes.io/docs/concepts/workloads/controllers/job/#pod-failure-policy
        "podFailurePolicy": {
            "rules": [
                {
                    "action": "Ignore",
                    "onExitCodes": {
                        "containerName": WAIT_FOR_CREDENTIALS,
                        "operator": "In",
                        "values": [CREDENTIALS_NOT_INJECTED_EXIT_CODE],
                    },
                }
            ]
        },
    }


def credentials_wait_container(image: str) -> dict[str, Any]:
    """Waits, before `migrate`, until the Pod Identity agent hands this pod its credentials.

    EKS Pod Identity associations take seconds to be effective after they are created (the
    Job is created right after its association): migrations that write to S3 would otherwise
    fail on a missing credential and spend the Job's retry on it.
    """
    return {
        "name": WAIT_FOR_CREDENTIALS,
        "image": image,
        "command": launch_command(WAIT_FOR_CREDENTIALS),
        "env": env_list({"CREDENTIALS_TIMEOUT_SECONDS": str(CREDENTIALS_TIMEOUT_SECONDS)}),
        "resources": resources(100, 128),
        "securityContext": container_security_context(),
    }
