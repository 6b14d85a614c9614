"""Business logic for compression jobs: plain, typed, keyword-only functions."""

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import IO

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from jobs import imaging
from jobs.models import Job, JobResult

logger = logging.getLogger(__name__)


class UploadsBusy(Exception):
    """Every upload slot of this process stayed taken for JOBS_UPLOAD_WAIT_SECONDS."""


_slots: tuple[int, threading.BoundedSemaphore] | None = None
_slots_lock = threading.Lock()


def _upload_slots() -> threading.BoundedSemaphore:
    # Per process, sized from settings on first use (tests change the setting).
    global _slots
    with _slots_lock:
        size = settings.JOBS_MAX_CONCURRENT_UPLOADS
        if _slots is None or _slots[0] != size:
            _slots = (size, threading.BoundedSemaphore(size))
        return _slots[1]


def job_create(*, file: IO[bytes], max_pixels: int | None = None) -> Job:
    """Validate an upload, store it and enqueue its compression once the row is committed.

    Raises ``imaging.InvalidImage`` when the file is not an acceptable image,
    ``UploadsBusy`` when this process's upload slots stay taken, and (outside a
    transaction) ``JobQueueUnavailable`` when the broker refuses: then nothing is stored.

    An upload in a slot is inspected, read whole and written to the database, which costs
    the web process about ten times the file's size at its peak (measured; a request thread
    holding a parsed upload while it waits costs about twice): the slots bound the larger
    part of the memory uploads take (infra/stack/memory.py).
    """
    slots = _upload_slots()
    if not slots.acquire(timeout=settings.JOBS_UPLOAD_WAIT_SECONDS):
        raise UploadsBusy(f"{settings.JOBS_MAX_CONCURRENT_UPLOADS} uploads are being stored; retry later")
    try:
        info = imaging.image_inspect(file=file, max_pixels=max_pixels or settings.JOBS_MAX_PIXELS)
        file.seek(0)
        data = file.read()
        job = Job.objects.create(
            input_data=data,
            input_content_type=info.content_type,
            input_bytes=len(data),
            input_width=info.width,
            input_height=info.height,
        )
    finally:
        slots.release()
    # On commit: a worker must never receive the id of a row it cannot see yet. Not
    # robust: when the broker refuses, the row is withdrawn and the caller gets the error.
    transaction.on_commit(lambda: _job_enqueue_or_withdraw(job), robust=False)
    return job


class JobQueueUnavailable(Exception):
    """The broker did not take the job's message within the publish timeout and retries."""


def job_enqueue(*, job_id: uuid.UUID | str) -> None:
    """Publish one message for a job, bounded in time: a dead or hung Redis raises quickly.

    Raises ``JobQueueUnavailable``. A message may still have reached Redis when this
    raises (the reply was lost); the task treats a message for a missing or finished
    job as done, so that is harmless.
    """
    from config.celery_app import app
    from jobs.tasks import job_compress_task

    timeout = settings.JOBS_PUBLISH_TIMEOUT
    try:
        # A connection of its own: the shared pool's sockets use the worker's long
        # broker timeouts, which would hold a request thread for half a minute.
        with app.connection_for_write(
            connect_timeout=timeout,
            transport_options={"socket_timeout": timeout, "socket_connect_timeout": timeout,
                               "health_check_interval": 0, "retry_on_timeout": False},
        ) as conn:
            job_compress_task.apply_async(
                (str(job_id),),
                connection=conn,
                retry=True,
                retry_policy={"max_retries": settings.JOBS_PUBLISH_RETRIES, "interval_start": 0,
                              "interval_step": 0.2, "interval_max": 0.2},
            )
    except Exception as exc:  # noqa: BLE001 - kombu and redis-py raise many types for one outage
        raise JobQueueUnavailable(f"{type(exc).__name__}: {exc}") from exc
    Job.objects.filter(pk=job_id).update(enqueued_at=timezone.now())


def _job_enqueue_or_withdraw(job: Job) -> None:
    try:
        job_enqueue(job_id=job.id)
    except JobQueueUnavailable as exc:
        # Nothing would ever run it: the client is told to retry, and no orphan stays behind.
        Job.objects.filter(pk=job.id, status=Job.Status.QUEUED).delete()
        logger.warning("job %s withdrawn: the broker did not take its message: %s", job.id, exc)
        raise


def attempts_exhausted(attempts: int) -> str:
    return (f"gave up after {attempts} attempts: the worker stopped during each one "
            "(killed, out of memory, or past the time limit)")


def job_compress(*, job_id: uuid.UUID | str) -> Job | None:
    """Compress a job's image and store the result; safe to run any number of times.

    A job already done is left alone. Two deliveries running at once both do the
    work, but the row lock and the one-to-one result let only the first one store it.
    """
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=job_id).first()
        if job is None:
            # Withdrawn because its publish timed out although Redis had taken the message.
            logger.info("job %s does not exist, skipping", job_id)
            return None
        if job.status in {Job.Status.DONE, Job.Status.FAILED}:
            logger.info("job %s already %s, skipping", job.id, job.status)
            return job
        if job.attempts >= settings.JOBS_MAX_ATTEMPTS:
            # Every earlier delivery died with its worker (OOM kill, hard time limit):
            # another one would only kill this worker too.
            job.status = Job.Status.FAILED
            job.error = attempts_exhausted(job.attempts)
            job.finished_at = timezone.now()
            job.save(update_fields=["status", "error", "finished_at"])
            logger.warning("job %s failed: %s", job.id, job.error)
            return job
        job.status = Job.Status.RUNNING
        job.attempts += 1
        job.started_at = timezone.now()
        job.error = ""
        job.save(update_fields=["status", "attempts", "started_at", "error"])

    try:
        compressed = imaging.image_recompress(
            data=bytes(job.input_data),
            max_dimension=settings.JOBS_OUTPUT_MAX_DIMENSION,
            quality=settings.JOBS_OUTPUT_QUALITY,
        )
    except Exception as exc:
        job_fail(job_id=job.id, error=f"{type(exc).__name__}: {exc}")
        raise

    with transaction.atomic():
        # The upload was read once above; reading its bytes again under the lock costs a copy per job.
        job = Job.objects.select_for_update().defer("input_data").get(pk=job_id)
        if job.status == Job.Status.DONE:
            logger.info("job %s finished by another delivery, discarding this result", job.id)
            return job
        JobResult.objects.create(
            job=job,
            data=compressed.data,
            content_type=compressed.content_type,
            bytes=len(compressed.data),
            width=compressed.width,
            height=compressed.height,
        )
        job.status = Job.Status.DONE
        job.error = ""
        job.finished_at = timezone.now()
        job.save(update_fields=["status", "error", "finished_at"])
    logger.info("job %s done: %d -> %d bytes", job.id, job.input_bytes, len(compressed.data))
    return job


def job_fail(*, job_id: uuid.UUID | str, error: str) -> None:
    """Mark a job failed, unless another delivery already finished it."""
    with transaction.atomic():
        job = Job.objects.select_for_update().defer("input_data").get(pk=job_id)
        if job.status == Job.Status.DONE:
            return
        job.status = Job.Status.FAILED
        job.error = error[:2000]
        job.finished_at = timezone.now()
        job.save(update_fields=["status", "error", "finished_at"])


@dataclass
class ReconcileReport:
    requeued: list[uuid.UUID] = field(default_factory=list)
    failed: list[uuid.UUID] = field(default_factory=list)
    # Jobs the broker would not take this pass; the next pass tries again.
    unpublished: list[uuid.UUID] = field(default_factory=list)


def jobs_reconcile(
    *,
    queued_after: timedelta,
    running_after: timedelta,
    max_attempts: int,
    now: datetime | None = None,
    enqueue: Callable[..., None] = job_enqueue,
) -> ReconcileReport:
    """Bring every unfinished job that nothing is working on back to a worker, or fail it.

    - queued, last published longer than ``queued_after`` ago: its message was never
      published (the web process died after the commit) or was lost; publish again.
    - running, started longer than ``running_after`` ago (more than the task time
      limit): its worker died (OOM kill, node loss) or could not record the failure;
      set it back to queued and publish again.
    - either, with ``max_attempts`` deliveries that all died: failed, with the reason.

    Duplicate messages are harmless: the task skips a job that is done or failed. Rows
    are locked with SKIP LOCKED, so two reconcilers never handle the same job.
    """
    now = now or timezone.now()
    report = ReconcileReport()
    stale = Q(status=Job.Status.QUEUED, last_enqueued__lt=now - queued_after) | Q(
        status=Job.Status.RUNNING, started_at__lt=now - running_after
    )
    with transaction.atomic():
        jobs = list(
            Job.objects.annotate(last_enqueued=Coalesce(F("enqueued_at"), F("created_at")))
            .filter(stale)
            .only("id", "status", "attempts")
            .select_for_update(skip_locked=True, of=("self",))
        )
        for job in jobs:
            if job.attempts >= max_attempts:
                Job.objects.filter(pk=job.pk).update(
                    status=Job.Status.FAILED, error=attempts_exhausted(job.attempts), finished_at=now
                )
                report.failed.append(job.id)
            else:
                # Marked before publishing: a second pass does not publish it again
                # until queued_after has passed, whatever happens to this message.
                Job.objects.filter(pk=job.pk).update(status=Job.Status.QUEUED, enqueued_at=now)
                report.requeued.append(job.id)
    for job_id in report.requeued:
        try:
            enqueue(job_id=job_id)
        except JobQueueUnavailable as exc:
            logger.warning("reconcile: job %s not re-enqueued: %s", job_id, exc)
            report.unpublished.append(job_id)
    if report.requeued or report.failed:
        logger.info("reconcile: requeued %d, failed %d, unpublished %d",
                    len(report.requeued), len(report.failed), len(report.unpublished))
    return report
