"""The reconciler measures every age by the database's clock, and refuses a mass expiry.

A reconciler pod whose clock ran 8 days ahead expired every job older than a day (files and
rows deleted, API 410) when its cutoffs came from its own clock: real ``manage.py
jobs_reconcile`` processes against the test database, with the pod's clock shifted in the
process (skewed_clock.py).
"""

import sys
from datetime import timedelta
from pathlib import Path

from conftest import encode, job_stored, photo_like
from service_processes import SERVICE_DIR

from jobs.models import ExpiredJob, Job

EIGHT_DAYS = 8 * 24 * 3600
SKEWED = str(Path(__file__).with_name("skewed_clock.py"))


def reconcile_pass(processes, name: str, *args: str, skew: float = 0.0):
    proc = processes.start(name, [sys.executable, SKEWED, str(skew), str(SERVICE_DIR / "manage.py"),
                                  "jobs_reconcile", *args])
    return proc.wait(timeout=120), proc.log()


def aged(job: Job, days: float) -> Job:
    Job.objects.filter(pk=job.pk).update(created_at=job.created_at - timedelta(days=days))
    return job


def test_a_pod_clock_days_ahead_expires_no_young_job(processes):
    data = encode(photo_like(64, 48))
    young = [job_stored(data, 64, 48) for _ in range(3)]
    old = aged(job_stored(data, 64, 48), days=8)
    code, log = reconcile_pass(processes, "reconciler-ahead", skew=EIGHT_DAYS)
    print(log)
    assert code == 0, log
    assert set(Job.objects.values_list("id", flat=True)) == {job.id for job in young}
    assert list(ExpiredJob.objects.values_list("id", flat=True)) == [old.id]
    assert "clock is +691200s off the database's" in log


def test_a_pass_refuses_to_expire_most_jobs_at_once_and_says_why(processes):
    data = encode(photo_like(64, 48))
    template = job_stored(data, 64, 48)
    # More than a batch, and more than JOBS_EXPIRE_MAX_PERCENT (50) of all jobs, past retention.
    Job.objects.bulk_create([Job(input_key=template.input_key, input_content_type="image/png",
                                 input_bytes=len(data), input_width=64, input_height=48) for _ in range(150)])
    Job.objects.exclude(pk=template.pk).update(created_at=template.created_at - timedelta(days=8))
    young = [job_stored(data, 64, 48) for _ in range(10)]

    code, log = reconcile_pass(processes, "reconciler-refused")
    print(log)
    assert code == 1
    assert "150 of 161 jobs were created before" in log and "--allow-mass-expiry" in log
    assert Job.objects.count() == 161 and not ExpiredJob.objects.exists()

    code, log = reconcile_pass(processes, "reconciler-allowed", "--allow-mass-expiry")
    assert code == 0, log
    assert ExpiredJob.objects.count() == 150
    assert set(Job.objects.values_list("id", flat=True)) == {template.id, *(job.id for job in young)}
