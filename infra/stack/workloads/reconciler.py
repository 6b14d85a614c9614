"""The job reconciler: a CronJob that runs one `manage.py jobs_reconcile` pass per period
(`python -m config.launch reconcile`).

Why a CronJob rather than Celery beat or a periodic Celery task: the reconciler repairs what
the broker lost (messages never published, or orphaned by a killed worker), so it must not
depend on the broker to be scheduled; a CronJob with `concurrencyPolicy: Forbid` is a
singleton without a lock, holds no memory between runs, and needs no Deployment kept at
exactly one replica (beat run twice schedules everything twice). Its cost is a minimum
period of one minute, which is far below the thresholds it applies (minutes).

CronJob fields (schedule, timeZone, concurrencyPolicy, startingDeadlineSeconds, history limits):
https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/
"""

from __future__ import annotations

from stack.model.pod_requests import RECONCILER_POD, system_pool
from stack.config.model import StackConfig
from stack.workloads import pods

RECONCILER = "reconciler"
DEADLINE_SECONDS = 300
"""A pass is a few queries and publishes; one that hangs (a frozen database) is killed."""
CPU_MILLICORES = RECONCILER_POD.cpu_millicores
MEMORY_MIB = RECONCILER_POD.memory_mib


def reconciler_settings(config: StackConfig) -> dict[str, str]:
    """Environment read by the reconciler and by workers (the attempt limit is enforced by both)."""
    reconciler = config.reconciler
    return {
        "JOBS_MAX_ATTEMPTS": str(reconciler.max_attempts),
        "JOBS_REQUEUE_QUEUED_AFTER": str(reconciler.queued_after_seconds),
        "JOBS_REQUEUE_RUNNING_GRACE": str(reconciler.running_grace_seconds),
    }


def schedule(every_minutes: int) -> str:
    return "* * * * *" if every_minutes == 1 else f"*/{every_minutes} * * * *"


def reconciler_cronjob(
    config: StackConfig,
    image: str,
    *,
    config_map_name: str = pods.CONFIG_MAP,
    secret_name: str = pods.SECRET,
) -> pods.Manifest:
    # The pool the system pods run on, which always has a node: on the worker pool a pass each
    # minute would hold a node there, and a pool whose workers scale to zero would never empty.
    pool_name = system_pool(config)
    container = pods.app_container(
        RECONCILER, image, pods.launch_command("reconcile"), config_map_name=config_map_name,
        secret_name=secret_name, cpu_millicores=CPU_MILLICORES, memory_mib=MEMORY_MIB,
    )  # fmt: skip
    spec = pods.pod_spec(
        component=RECONCILER,
        pool_name=pool_name,
        pool=config.node_pools[pool_name],
        container=container,
        termination_grace_seconds=30,
        restart_policy="Never",
        spread=False,
    )
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": pods.metadata(RECONCILER, RECONCILER),
        "spec": {
            "schedule": schedule(config.reconciler.every_minutes),
            "timeZone": "Etc/UTC",
            # One pass at a time: two would only compete for the same rows (SKIP LOCKED).
            "concurrencyPolicy": "Forbid",
            # A missed run is not worth catching up on: the next one covers it.
            "startingDeadlineSeconds": 60 * config.reconciler.every_minutes,
            "successfulJobsHistoryLimit": 1,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {
                "metadata": {"labels": pods.labels(RECONCILER)},
                "spec": {
                    "backoffLimit": 0,
                    "activeDeadlineSeconds": DEADLINE_SECONDS,
                    "ttlSecondsAfterFinished": 3600,
                    "template": {"metadata": {"labels": pods.labels(RECONCILER)}, "spec": spec},
                },
            },
        },
    }
