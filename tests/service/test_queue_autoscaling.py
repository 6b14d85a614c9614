"""The queue the worker ScaledObject watches, against real Redis and real Celery processes.

The ScaledObject is rendered by the infra program for the broker in the test's REDIS_URL, and
its Redis list scaler settings (address, database, list name, target) are read back and used
with redis-py exactly as KEDA uses them (`LLEN <listName>` in `databaseIndex`); TLS aside,
since the local Redis speaks plain TCP.

What a worker has taken but not started would be missing from the list while its job still
waits: the scaler would see less than the backlog. With this project's settings (late
acknowledgement, prefetch multiplier 1, ``-O fair``) a worker at ``-c N`` holds at most N
unacknowledged messages (kombu 5.7 ``QoS.can_consume``, ``kombu/transport/virtual/base.py``
lines 197-204, under Celery's prefetch count of N x the multiplier, ``celery/worker/consumer/
consumer.py`` lines 281-285), and the fair pool hands each to an idle process at once: every
message a worker holds is running. Celery 5.6's ``--disable-prefetch`` (``celery/bin/worker.py``
lines 185-193; ``celery/worker/consumer/tasks.py`` lines 54-74: no new message while the
worker's reserved requests reach its pool size) adds nothing to that; the backlog test runs
both.
"""

import io
import math
import subprocess
import sys
from pathlib import Path

import pytest

import redis
from conftest import TEST_REDIS_URL, encode, photo_like
from service_processes import SERVICE_DIR, wait_for

from config import launch
from jobs.models import Job, JobResult
from stack.config.loader import config_from_stack_file
from stack.config.names import DEFAULT_QUEUE as CELERY_QUEUE
from stack.workloads import queue_scaling

JOBS = 4


def prod_config():
    return config_from_stack_file("prod")


def scaler_trigger() -> dict[str, str]:
    config = prod_config()
    scaled = queue_scaling.scaled_object(config, queue_scaling.broker_location(TEST_REDIS_URL))
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "redis"
    return trigger["metadata"]


def scaler_client(metadata: dict[str, str]) -> redis.Redis:
    """A client connected where KEDA's scaler connects, with its settings."""
    host, port = metadata["address"].rsplit(":", 1)
    assert metadata["enableTLS"] == "false"  # the local Redis has no TLS; ElastiCache's has
    return redis.Redis(host=host, port=int(port), db=int(metadata["databaseIndex"]))


def desired_replicas(list_length: int, metadata: dict[str, str]) -> int:
    """What the HPA KEDA feeds asks for: AverageValue target, one metric."""
    return math.ceil(list_length / int(metadata["listLength"]))


def submit_jobs(count: int) -> list[str]:
    from jobs import services

    return [
        str(services.job_create(file=io.BytesIO(encode(photo_like(320, 240, seed=i)))).id) for i in range(count)
    ]


def workers_on_the_test_broker() -> list[str]:
    """Celery workers answering a ping on the test's Redis database (broadcasts stay within one database)."""
    from config.celery_app import app

    return [name for reply in app.control.ping(timeout=1.0) for name in reply]


def test_the_watched_list_grows_without_workers_and_drains_with_one(processes):
    metadata = scaler_trigger()
    scaler = scaler_client(metadata)
    list_name = metadata["listName"]
    assert list_name == CELERY_QUEUE
    assert int(metadata["databaseIndex"]) == redis.Redis.from_url(TEST_REDIS_URL).connection_pool.connection_kwargs["db"]
    assert scaler.llen(list_name) == 0
    # The list is the one the deployed workers use, so it is shared with any other worker on this
    # Redis database (another test run): such a worker would empty it as it fills.
    others = workers_on_the_test_broker()
    assert others == [], (f"Celery workers {others} consume {TEST_REDIS_URL}, which this test needs to "
                          "itself: give each run its own database with SERVICE_TEST_REDIS_URL")

    # No worker runs: every submitted job waits in the watched list.
    job_ids = submit_jobs(JOBS)
    assert scaler.llen(list_name) == JOBS
    # A task sent with a priority lands in the same list (one priority step), not in a
    # "jobs\x06\x16<step>" list the scaler would never see.
    from jobs.tasks import job_compress_task

    job_compress_task.apply_async(args=[job_ids[-1]], priority=9)
    assert scaler.llen(list_name) == JOBS + 1
    queue_keys = {k for k in scaler.keys(f"{list_name}*")}
    assert queue_keys == {list_name.encode()}
    assert desired_replicas(JOBS + 1, metadata) == JOBS + 1
    assert int(metadata["activationListLength"]) < JOBS + 1

    # One (slowed-down) worker: a running job leaves the list for the "unacked" hash, where
    # the scaler does not look; the list drains to zero and every job is done once.
    processes.worker(slow_job_seconds=0.5)
    wait_for(lambda: scaler.hlen("unacked") == 1 and scaler.llen(list_name) < JOBS + 1, timeout=30,
             interval=0.02, what="a job reserved and out of the list")
    assert scaler.llen(list_name) + scaler.hlen("unacked") <= JOBS + 1
    wait_for(lambda: scaler.llen(list_name) == 0 and scaler.hlen("unacked") == 0, timeout=60, interval=0.2,
             what="the queue drained")
    wait_for(lambda: set(Job.objects.filter(pk__in=job_ids).values_list("status", flat=True)) == {"done"},
             timeout=30, interval=0.2, what="every job done")
    assert JobResult.objects.filter(job_id__in=job_ids).count() == JOBS
    assert desired_replicas(scaler.llen(list_name), metadata) == 0


def test_the_queue_name_comes_from_the_environment_with_the_infra_default():
    def queue(env_value: str | None) -> str:
        env = {"PYTHONPATH": str(SERVICE_DIR), "DJANGO_SETTINGS_MODULE": "config.settings.local", "PATH": ""}
        if env_value is not None:
            env["CELERY_QUEUE"] = env_value
        code = (
            "import django; django.setup(); from config.celery_app import app; "
            "print(app.conf.task_default_queue, app.conf.broker_transport_options['priority_steps'])"
        )
        result = subprocess.run([sys.executable, "-c", code], cwd=SERVICE_DIR, env=env, capture_output=True,
                                text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    assert queue(None) == f"{CELERY_QUEUE} [0]"
    assert queue("images") == "images [0]"


@pytest.mark.parametrize("prefetch", ["default", "--disable-prefetch"])
def test_the_scalers_list_length_is_the_backlog_at_c2(processes, prefetch):
    metadata = scaler_trigger()
    scaler = scaler_client(metadata)
    concurrency, jobs = 2, 6
    env = {"WORKER_CONCURRENCY": str(concurrency), "SLOW_JOB_SECONDS": "8",
           "CELERY_HEARTBEAT_FILE": str(processes.tmp_path / "heartbeat")}
    extra = ["--hostname", "backlog@%h", *([prefetch] if prefetch != "default" else [])]
    args = launch.command("worker", {**processes.base_env, **env}, extra)[1:]
    worker = processes.start("worker", [sys.executable, str(Path(__file__).with_name("slow_worker.py")), *args],
                             env=env)
    wait_for(lambda: "ready." in worker.log(), timeout=30, what="worker ready")
    job_ids = submit_jobs(jobs)

    def count(status: str) -> int:
        return Job.objects.filter(pk__in=job_ids, status=status).count()

    wait_for(lambda: count(Job.Status.RUNNING) == concurrency, timeout=30, what=f"{concurrency} jobs running")
    # While the first two run (8 s each): what KEDA reads, against the jobs no worker started.
    samples = [(scaler.llen(metadata["listName"]), count(Job.Status.QUEUED), count(Job.Status.RUNNING))
               for _ in range(10)]
    print(f"{prefetch}: (LLEN, queued, running) = {sorted(set(samples))}")
    assert all(seen == queued for seen, queued, _ in samples), samples
    assert samples[-1][:2] == (jobs - concurrency, jobs - concurrency), samples

