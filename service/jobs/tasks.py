from config.celery_app import app
from jobs import services


@app.task(name="jobs.compress")
def job_compress_task(job_id: str) -> None:
    # Load by id and hand over to the service: the message carries no image data.
    services.job_compress(job_id=job_id)
