"""Expiry of jobs past their retention: files, rows, tombstones."""

import uuid
from datetime import datetime

from django.db import transaction

from jobs import files
from jobs.leases import db_now
from jobs.models import ExpiredJob, Job, JobResult


class MassExpiryRefused(Exception):
    """A pass would expire more than the allowed fraction of all jobs at once."""


EXPIRE_BATCH = 100


def jobs_expire(
    *,
    created_before: datetime,
    tombstones_before: datetime | None = None,
    now: datetime | None = None,
    batch: int = EXPIRE_BATCH,
    max_fraction: float | None = None,
) -> list[uuid.UUID]:
    """Delete every job created before ``created_before``: its upload, its result, its row.

    Its id is kept as an ``ExpiredJob`` (the API answers 410 Gone for it) until
    ``tombstones_before``, when given. The only storage call is a delete per file: the
    reconciler's role allows nothing else.

    Per batch, in one transaction: lock the rows (SKIP LOCKED: another reconciler, or a
    worker storing a result, keeps its rows), delete their files, record the tombstones,
    delete the rows. A crash or a storage error after some files are gone rolls the rows
    back; the next pass deletes the same files again (deleting a missing file succeeds) and
    then the rows. So a row may briefly name a deleted file, but only once it is past its
    retention, when the API answers 410 for it already; a file never outlives its row for
    longer than that (the bucket's lifecycle, a day later, is the backstop).

    Raises ``FileStoreUnavailable``; the batches committed before it stay expired. Raises
    ``MassExpiryRefused``, expiring nothing, when more than ``batch`` jobs and more than
    ``max_fraction`` of all jobs are due at once: a clock or a retention setting gone wrong
    must not delete a week of jobs in one pass.
    """
    now = now or db_now()
    if max_fraction is not None:
        due = Job.objects.filter(created_at__lt=created_before).count()
        if due > batch:
            total = Job.objects.count()
            if due > max_fraction * total:
                raise MassExpiryRefused(
                    f"{due} of {total} jobs were created before {created_before.isoformat()}, more than "
                    f"{max_fraction:.0%} of them: nothing expired; if that is right, run one pass with "
                    "--allow-mass-expiry")
    expired: list[uuid.UUID] = []
    while True:
        with transaction.atomic():
            jobs = list(
                Job.objects.filter(created_at__lt=created_before)
                .order_by("created_at")
                .only("id", "input_key", "created_at")
                .select_for_update(skip_locked=True, of=("self",))[:batch]
            )
            if not jobs:
                break
            ids = [job.id for job in jobs]
            results = dict(JobResult.objects.filter(job_id__in=ids).values_list("job_id", "key"))
            for job in jobs:
                if job.input_key:
                    files.file_delete(key=job.input_key)
                if results.get(job.id):
                    files.file_delete(key=results[job.id])
            ExpiredJob.objects.bulk_create(
                [ExpiredJob(id=job.id, created_at=job.created_at, expired_at=now) for job in jobs],
                ignore_conflicts=True,
            )
            Job.objects.filter(pk__in=ids).delete()
        expired.extend(ids)
        if len(jobs) < batch:
            break
    if tombstones_before is not None:
        ExpiredJob.objects.filter(expired_at__lt=tombstones_before).delete()
    return expired
