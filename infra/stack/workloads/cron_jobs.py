"""The stack's `cronJobs`: management commands on a schedule, one CronJob each, for teams that
prefer them to Celery beat (no broker in the path, nothing kept between runs). Modelled on the
demo's reconciler (reconciler.py says why a CronJob is a singleton without a lock).

Each runs `python -m django <command...>`: Django's own command runner, the same as
`manage.py` with the settings module from DJANGO_SETTINGS_MODULE
(https://docs.djangoproject.com/en/5.2/ref/django-admin/: "python -m django" is django-admin).
The pods use the workers' service account, and with it their Pod Identity role and egress: a
management command runs the app's code as a task would.
"""

from __future__ import annotations

from stack.config.model import CronJobConfig, StackConfig
from stack.config.names import CRON, NAMESPACE, WORKER
from stack.model.pod_requests import cron_job_pool
from stack.workloads import pods

JOB_LABEL = "django-eks/cron-job"
"""Which of the cronJobs a pod runs (all share the component `cron` and its network policy)."""


def cron_job_name(key: str) -> str:
    return f"{CRON}-{key}"


def management_command(job: CronJobConfig) -> list[str]:
    return ["python", "-m", "django", *job.command]


def cron_jobs(
    config: StackConfig,
    image: str,
    *,
    config_map_name: str = pods.CONFIG_MAP,
    secret_name: str = pods.SECRET,
) -> list[pods.Manifest]:
    """One CronJob per entry of `cronJobs`, in the stack file's order."""
    return [
        cron_job(config, image, key=key, config_map_name=config_map_name, secret_name=secret_name)
        for key in config.cron_jobs
    ]


def cron_job(
    config: StackConfig,
    image: str,
    *,
    key: str,
    config_map_name: str = pods.CONFIG_MAP,
    secret_name: str = pods.SECRET,
) -> pods.Manifest:
    job = config.cron_jobs[key]
    name = cron_job_name(key)
    labels = {**pods.labels(CRON), JOB_LABEL: key}
    pool_name = cron_job_pool(config, key)
    container = pods.app_container(
        CRON, image, management_command(job), config_map_name=config_map_name, secret_name=secret_name,
        cpu_millicores=job.cpu_millicores, memory_mib=job.memory_mib,
    )  # fmt: skip
    spec = pods.pod_spec(
        component=CRON,
        pool_name=pool_name,
        pool=config.node_pools[pool_name],
        container=container,
        termination_grace_seconds=30,
        restart_policy="Never",
        spread=False,
        service_account=WORKER,
    )
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels},
        "spec": {
            "schedule": job.schedule,
            "timeZone": "Etc/UTC",
            # One run at a time: a run still going when the next falls due skips that one.
            "concurrencyPolicy": "Forbid",
            "successfulJobsHistoryLimit": 1,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {
                "metadata": {"labels": labels},
                "spec": {
                    # A failed run is not retried: the next scheduled one is the retry.
                    "backoffLimit": 0,
                    "activeDeadlineSeconds": job.deadline_seconds,
                    "ttlSecondsAfterFinished": 3600,
                    "template": {"metadata": {"labels": labels}, "spec": spec},
                },
            },
        },
    }
