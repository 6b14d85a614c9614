"""The chaos run's harness (tests/service/chaos, `make chaos`) on one cheap fault, so it keeps working.

A pool child SIGKILLed mid-job, as the kernel's OOM killer does to the largest process of a
worker pod: the Celery parent sees the child die and, with `task_acks_late` and
`task_reject_on_worker_lost` (service/config/settings/base.py), rejects the message so that
Redis redelivers it at once ("Even if task_acks_late is enabled, the worker will acknowledge
tasks when the worker process executing them abruptly exits ... Enabling this [reject_on_worker_lost]
causes the message to be re-queued instead":
https://docs.celeryq.dev/en/stable/userguide/configuration.html#task-reject-on-worker-lost).
So every job ends done, the killed one started twice and stored once, with no restart of the
worker pod (its parent stays alive and keeps its heartbeat). The kubelet's timing is scaled
down 10x to keep the run short.
"""

from chaos.harness import RECOVERY_LIMIT
from chaos.run import chaos_run

JOBS = 10


def test_a_pool_child_killed_mid_job_is_redelivered_once_and_every_job_ends_done(tmp_path):
    timing, [outcome] = chaos_run(["pool-child-kill"], jobs=JOBS, clients=4, scale=10, deadline=RECOVERY_LIMIT,
                                  stack="dev", workdir=tmp_path, progress=lambda line: None)
    report = outcome.as_json()
    assert "mid-job" in outcome.what, report
    assert outcome.passed, report
    assert (outcome.accepted, outcome.done, outcome.jobs) == (JOBS, JOBS, JOBS), report
    assert outcome.redelivered >= 1, report  # the killed child's job ran again, and only once to the end
    assert not [r for r in outcome.restarts if r["container"].startswith("worker")], report
