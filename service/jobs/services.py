"""Business logic for compression jobs: plain, typed, keyword-only functions."""

import logging
import uuid
from typing import IO

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from jobs import imaging
from jobs.models import Job, JobResult

logger = logging.getLogger(__name__)


def job_create(*, file: IO[bytes], max_pixels: int | None = None) -> Job:
    """Validate an upload, store it and enqueue its compression once the row is committed.

    Raises ``imaging.InvalidImage`` when the file is not an acceptable image.
    """
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
    from jobs.tasks import job_compress_task

    # On commit: a worker must never receive the id of a row it cannot see yet.
    job_compress_task.delay_on_commit(str(job.id))
    return job


def job_compress(*, job_id: uuid.UUID | str) -> Job:
    """Compress a job's image and store the result; safe to run any number of times.

    A job already done is left alone. Two deliveries running at once both do the
    work, but the row lock and the one-to-one result let only the first one store it.
    """
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job_id)
        if job.status == Job.Status.DONE:
            logger.info("job %s already done, skipping", job.id)
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
