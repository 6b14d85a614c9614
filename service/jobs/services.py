"""Business logic for compression jobs: plain, typed, keyword-only functions."""

import logging
import os
import threading
import uuid
from datetime import datetime, timedelta
from io import BytesIO
from typing import IO

from django.conf import settings
from django.db import Error as DatabaseError
from django.db import transaction
from django.db.models import BooleanField, ExpressionWrapper, F, Q, Value
from django.db.models.functions import Now

from django_eks_runtime import worker_shutdown

from jobs import broker, files, imaging
from jobs.files import FileStoreUnavailable
from jobs.leases import JobBusy, JobInterrupted, LeaseKeeper, db_now, lease_length
from jobs.models import ExpiredJob, Job, JobResult

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
    ``UploadsBusy`` when this process's upload slots stay taken, ``FileStoreUnavailable``
    when the storage refuses the upload, and (outside a transaction) ``JobQueueUnavailable``
    when the broker refuses: in each case nothing is left stored.

    The file is stored first (``uploads/<job id>``), then the row: a row never names a file
    that is not there. A process that dies in between leaves a file no row names, which the
    bucket's lifecycle rule removes.

    An upload in a slot is inspected and streamed to the storage; the slots bound the larger
    part of the memory uploads take (infra/stack/config/memory.py).
    """
    slots = _upload_slots()
    if not slots.acquire(timeout=settings.JOBS_UPLOAD_WAIT_SECONDS):
        raise UploadsBusy(f"{settings.JOBS_MAX_CONCURRENT_UPLOADS} uploads are being stored; retry later")
    try:
        info = imaging.image_inspect(file=file, max_pixels=max_pixels or settings.JOBS_MAX_PIXELS)
        size = file.seek(0, os.SEEK_END)
        file.seek(0)
        job = Job(
            input_content_type=info.content_type,
            input_bytes=size,
            input_width=info.width,
            input_height=info.height,
        )
        job.input_key = files.file_store(key=files.upload_key(job.id), file=file, content_type=info.content_type)
        try:
            job.save(force_insert=True)
        except BaseException:
            _upload_discard(job)
            raise
    finally:
        slots.release()
    # On commit: a worker must never receive the id of a row it cannot see yet. Not
    # robust: when the broker refuses, the row is withdrawn and the caller gets the error.
    transaction.on_commit(lambda: _job_enqueue_or_withdraw(job), robust=False)
    return job


def _upload_discard(job: Job) -> None:
    """Delete the upload of a job that will never run; the lifecycle rule is the fallback."""
    try:
        files.file_delete(key=job.input_key)
    except FileStoreUnavailable as exc:
        logger.warning("job %s: its upload %s stays until the bucket's lifecycle removes it: %s",
                       job.id, job.input_key, exc)


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

    try:
        # A connection of its own: the shared pool's sockets use the worker's long
        # broker timeouts, which would hold a request thread for half a minute.
        with app.connection_for_write(**broker.bounded(settings.JOBS_PUBLISH_TIMEOUT)) as conn:
            job_compress_task.apply_async(
                (str(job_id),),
                connection=conn,
                retry=True,
                retry_policy={"max_retries": settings.JOBS_PUBLISH_RETRIES, "interval_start": 0,
                              "interval_step": 0.2, "interval_max": 0.2},
            )
    except Exception as exc:  # noqa: BLE001 - kombu and redis-py raise many types for one outage
        raise JobQueueUnavailable(f"{type(exc).__name__}: {exc}") from exc
    Job.objects.filter(pk=job_id).update(enqueued_at=Now())


def _job_enqueue_or_withdraw(job: Job) -> None:
    try:
        job_enqueue(job_id=job.id)
    except JobQueueUnavailable as exc:
        # Nothing would ever run it: the client is told to retry, and no orphan stays behind.
        deleted, _ = Job.objects.filter(pk=job.id, status=Job.Status.QUEUED).delete()
        if deleted:
            _upload_discard(job)
        logger.warning("job %s withdrawn: the broker did not take its message: %s", job.id, exc)
        raise


def attempts_exhausted(attempts: int) -> str:
    return (f"gave up after {attempts} attempts: the worker stopped during each one "
            "(killed, out of memory, or past the time limit)")


def _job_claim(job_id: uuid.UUID | str, resume: uuid.UUID | None) -> tuple[Job | None, uuid.UUID | None]:
    """Lock the row and take the job for this delivery: (job, claim), or (job, None) when there
    is nothing to run. Raises ``JobBusy`` when another delivery holds a live lease."""
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=job_id).first()
        if job is None:
            # Withdrawn because its publish timed out although Redis had taken the message,
            # or expired.
            logger.info("job %s does not exist, skipping", job_id)
            return None, None
        if job.status in {Job.Status.DONE, Job.Status.FAILED}:
            logger.info("job %s already %s, skipping", job.id, job.status)
            return job, None
        now = db_now()
        # The retry of a delivery a database error interrupted goes on with its attempt; a
        # redelivery of that retry (its worker killed) finds a newer claim and counts one.
        resuming = resume is not None and job.claim == resume
        if (not resuming and job.status == Job.Status.RUNNING and job.lease_until is not None
                and job.lease_until > now):
            raise JobBusy(job.id, (job.lease_until - now).total_seconds())
        if not resuming and job.attempts >= settings.JOBS_MAX_ATTEMPTS:
            # Every earlier delivery died with its worker (OOM kill, hard time limit):
            # another one would only kill this worker too.
            job.status = Job.Status.FAILED
            job.error = attempts_exhausted(job.attempts)
            job.finished_at = now
            job.save(update_fields=["status", "error", "finished_at"])
            logger.warning("job %s failed: %s", job.id, job.error)
            return job, None
        claim = uuid.uuid4()
        job.status = Job.Status.RUNNING
        if not resuming:
            job.attempts += 1
            job.started_at = now
        job.error = ""
        job.claim = claim
        job.lease_until = now + lease_length()
        job.save(update_fields=["status", "attempts", "started_at", "error", "claim", "lease_until"])
        return job, claim


def job_compress(*, job_id: uuid.UUID | str, resume: uuid.UUID | str | None = None) -> Job | None:
    """Compress a job's image and store the result; safe to run any number of times.

    A job already done is left alone. A delivery claims the job under the row lock: it
    counts an attempt, writes a new claim and a lease (``JOBS_LEASE_SECONDS``, renewed while
    it runs). A delivery that finds the job running under a live lease raises ``JobBusy``
    (the task retries when the lease would end), so a duplicate message never runs a job a
    second time while its first run is alive. The result is written to the storage
    (``results/<job id>.webp``) while the row is locked, and the one-to-one result lets only
    one delivery store it.

    Raises ``FileStoreUnavailable`` when the storage cannot be read or written: the job is
    set back to queued without counting the attempt (the task retries it, as it does a
    database error). An upload that is missing fails the job. A database error after the
    claim raises ``JobInterrupted`` with the claim: the delivery that passes it back as
    ``resume`` goes on without counting another attempt.
    """
    resume_claim = uuid.UUID(str(resume)) if resume is not None else None
    claimed, claim = _job_claim(job_id, resume_claim)
    if claimed is None or claim is None:
        return claimed
    job = claimed
    keeper = LeaseKeeper(job.id, claim)
    keeper.start()
    try:
        return _job_run(job)
    except BaseException as exc:
        if worker_shutdown.stopping_now():
            # The worker's stop cancelled this delivery, whatever the exception it interrupted
            # (its message goes back to the queue): no attempt used, and the next delivery need
            # not wait for the lease to run out. Released by this process before it exits, so
            # the job runs nowhere else meanwhile; should that fail, the lease still holds.
            try:
                _job_release(job, "the worker stopped before it finished")
            except DatabaseError as release_error:
                logger.warning("job %s not released as its worker stopped: %s", job.id, release_error)
            raise
        if isinstance(exc, DatabaseError):
            raise JobInterrupted(claim) from exc
        raise
    finally:
        keeper.stop()


def _job_run(job: Job) -> Job | None:
    try:
        data = files.file_read(key=job.input_key)
    except FileNotFoundError:
        job_fail(job_id=job.id, error=f"the upload {job.input_key} is missing from the storage")
        return Job.objects.filter(pk=job.id).first()
    except FileStoreUnavailable:
        _job_release(job, "the storage failed")
        raise
    try:
        compressed = imaging.image_recompress(
            data=data,
            max_dimension=settings.JOBS_OUTPUT_MAX_DIMENSION,
            quality=settings.JOBS_OUTPUT_QUALITY,
        )
    except Exception as exc:
        job_fail(job_id=job.id, error=f"{type(exc).__name__}: {exc}")
        raise
    del data

    try:
        with transaction.atomic():
            locked = Job.objects.select_for_update().filter(pk=job.id).first()
            if locked is None:
                logger.info("job %s expired while it ran, discarding its result", job.id)
                return None
            job = locked
            if job.status == Job.Status.DONE:
                logger.info("job %s finished by another delivery, discarding this result", job.id)
                return job
            key = files.file_store(
                key=files.result_key(job.id), file=BytesIO(compressed.data), content_type=compressed.content_type
            )
            JobResult.objects.create(
                job=job,
                key=key,
                content_type=compressed.content_type,
                bytes=len(compressed.data),
                width=compressed.width,
                height=compressed.height,
            )
            job.status = Job.Status.DONE
            job.error = ""
            job.lease_until = None
            job.finished_at = db_now()
            job.save(update_fields=["status", "error", "lease_until", "finished_at"])
    except FileStoreUnavailable:
        _job_release(job, "the storage failed")
        raise
    logger.info("job %s done: %d -> %d bytes", job.id, job.input_bytes, len(compressed.data))
    return job


def _job_release(job: Job, why: str) -> None:
    """Set this delivery's job back to queued: the storage failed, or the worker stopped, not the
    image nor the worker's memory, so this attempt does not count towards JOBS_MAX_ATTEMPTS. The
    job waits for the task's retry or its message's redelivery (or the reconciler)."""
    Job.objects.filter(pk=job.id, status=Job.Status.RUNNING, claim=job.claim).update(
        status=Job.Status.QUEUED, attempts=F("attempts") - 1, started_at=None, lease_until=None
    )
    logger.info("job %s back to queued: %s", job.id, why)


def job_fail(*, job_id: uuid.UUID | str, error: str) -> None:
    """Mark a job failed, unless another delivery already finished it."""
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.status == Job.Status.DONE:
            return
        job.status = Job.Status.FAILED
        job.error = error[:2000]
        job.lease_until = None
        job.finished_at = db_now()
        job.save(update_fields=["status", "error", "lease_until", "finished_at"])


class JobNotFound(Exception):
    """No job has this id, and none had it within JOBS_TOMBSTONE_DAYS."""


class JobExpired(Exception):
    """The job had this id, and is past its retention: its files are (being) deleted."""


def job_get(*, job_id: str, now: datetime | None = None) -> Job:
    """The job with this id, as the API shows it.

    A job created longer than JOBS_RETENTION_DAYS ago is expired from that moment, whether or
    not the reconciler has deleted it yet; one the reconciler deleted is known by its tombstone.
    Raises ``JobNotFound`` or ``JobExpired``.
    """
    try:
        key = uuid.UUID(job_id)
    except ValueError:
        raise JobNotFound(job_id) from None
    retention = timedelta(days=settings.JOBS_RETENTION_DAYS)
    # By the database's clock, like the reconciler's expiry.
    past = Q(created_at__lt=(Now() if now is None else Value(now)) - retention)
    job = Job.objects.filter(pk=key).annotate(past_retention=ExpressionWrapper(past, output_field=BooleanField())).first()
    if job is None:
        if ExpiredJob.objects.filter(pk=key).exists():
            raise JobExpired(job_id)
        raise JobNotFound(job_id)
    if job.past_retention:
        raise JobExpired(job_id)
    return job
