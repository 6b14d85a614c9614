from django.conf import settings
from django.db import Error as DatabaseError

from config.celery_app import app
from jobs import services


@app.task(
    name="jobs.compress",
    # A database outage must not drain the queue into jobs stuck "queued": the task is
    # published again with a growing delay until PostgreSQL answers. Other errors are
    # the job's own (recorded as failed by the service).
    autoretry_for=(DatabaseError,),
    retry_backoff=1,
    retry_backoff_max=settings.JOBS_DB_RETRY_BACKOFF_MAX,
    retry_jitter=True,
    max_retries=None,
)
def job_compress_task(job_id: str) -> None:
    # Load by id and hand over to the service: the message carries no image data.
    services.job_compress(job_id=job_id)
