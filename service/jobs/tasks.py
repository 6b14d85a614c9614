from celery.utils.time import get_exponential_backoff_interval
from django.conf import settings
from django.db import Error as DatabaseError

from config.celery_app import app
from jobs import services
from jobs.files import FileStoreUnavailable


def backoff(retries: int) -> float:
    # As autoretry_for's retry_backoff below: 1 s doubling to the maximum, full jitter.
    return get_exponential_backoff_interval(factor=1, retries=retries, maximum=settings.JOBS_DB_RETRY_BACKOFF_MAX,
                                            full_jitter=True)


@app.task(
    bind=True,
    name="jobs.compress",
    # A database or storage outage must not drain the queue into jobs stuck "queued" (or
    # failed for no fault of their own): the task is published again with a growing delay
    # until PostgreSQL and the storage answer. Other errors are the job's own (recorded as
    # failed by the service).
    autoretry_for=(DatabaseError, FileStoreUnavailable),
    retry_backoff=1,
    retry_backoff_max=settings.JOBS_DB_RETRY_BACKOFF_MAX,
    retry_jitter=True,
    max_retries=None,
)
def job_compress_task(self, job_id: str, resume: str | None = None) -> None:
    # Load by id and hand over to the service: the message carries no image data.
    try:
        services.job_compress(job_id=job_id, resume=resume)
    except services.JobInterrupted as exc:
        # A database error after the claim: the retry carries the claim and goes on with the
        # same attempt (the job's attempts count workers lost, not outages).
        raise self.retry(args=(job_id,), kwargs={"resume": str(exc.claim)}, exc=exc,
                         countdown=backoff(self.request.retries)) from exc
    except services.JobBusy as exc:
        # Another delivery is running it (a duplicate message): look again when its lease would
        # end; by then it is done, or its worker died and this delivery takes over.
        raise self.retry(exc=exc, countdown=exc.seconds + 1) from exc
