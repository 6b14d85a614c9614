from django.conf import settings
from django.db import Error as DatabaseError

from config.celery_app import app
from jobs import services
from jobs.files import FileStoreUnavailable


@app.task(
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
def job_compress_task(job_id: str) -> None:
    # Load by id and hand over to the service: the message carries no image data.
    services.job_compress(job_id=job_id)
