"""jobs.services: idempotent compression under duplicate and concurrent deliveries."""

import io
import threading

import pytest
from conftest import encode, job_stored, photo_like
from django.db import connection

from jobs import imaging, leases, services
from jobs.models import Job, JobResult


def new_job(size=(640, 480)) -> Job:
    f = io.BytesIO(encode(photo_like(*size)))
    return services.job_create(file=f)


def stored_job(size=(640, 480)) -> Job:
    """A committed job whose message was never published: only the deliveries a test makes run it."""
    return job_stored(encode(photo_like(*size)), *size)


@pytest.mark.django_db(transaction=True)
def test_a_duplicate_delivery_waits_for_the_live_lease_and_takes_over_an_expired_one(monkeypatch):
    # Committed for real (the deliveries use their own connections), but not published:
    # a worker on the same Redis database would otherwise be another delivery.
    job = stored_job()
    inside = threading.Semaphore(0)
    go_on = threading.Event()
    recompress = imaging.image_recompress

    def held(**kwargs):
        inside.release()
        assert go_on.wait(timeout=60)
        return recompress(**kwargs)

    monkeypatch.setattr(imaging, "image_recompress", held)
    errors: list[BaseException] = []

    def deliver() -> None:
        try:
            services.job_compress(job_id=job.id)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    first = threading.Thread(target=deliver)
    first.start()
    assert inside.acquire(timeout=30)
    # A duplicate message while the first delivery runs: it does not run the job a second time.
    with pytest.raises(services.JobBusy) as busy:
        services.job_compress(job_id=job.id)
    assert 0 < busy.value.seconds <= leases.lease_length().total_seconds()
    job.refresh_from_db()
    assert (job.status, job.attempts) == ("running", 1)

    # Its worker stopped renewing the lease (killed): the next delivery takes the job over,
    # counting an attempt, and of two deliveries in the work at once one stores the result.
    Job.objects.filter(pk=job.id).update(lease_until=leases.db_now() - leases.lease_length())
    second = threading.Thread(target=deliver)
    second.start()
    assert inside.acquire(timeout=30)
    go_on.set()
    for thread in (first, second):
        thread.join(timeout=60)
    assert errors == []
    job.refresh_from_db()
    assert (job.status, job.attempts, job.lease_until) == ("done", 2, None)
    assert JobResult.objects.filter(job=job).count() == 1


@pytest.mark.django_db
def test_large_image_is_resized_to_the_bounded_dimension(settings):
    settings.JOBS_OUTPUT_MAX_DIMENSION = 500
    job = new_job((1200, 400))
    services.job_compress(job_id=job.id)
    result = JobResult.objects.get(job=job)
    assert (result.width, result.height) == (500, 167)
    assert result.content_type == "image/webp"


@pytest.mark.django_db
def test_failure_is_recorded(monkeypatch):
    job = new_job((64, 64))

    def broken(**kwargs):
        raise OSError("disk on fire")

    monkeypatch.setattr(imaging, "image_recompress", broken)
    with pytest.raises(OSError):
        services.job_compress(job_id=job.id)
    job.refresh_from_db()
    assert job.status == "failed"
    assert "disk on fire" in job.error
    assert not JobResult.objects.filter(job=job).exists()


@pytest.mark.django_db
def test_task_loads_the_job_by_id_and_calls_the_service():
    from jobs.tasks import job_compress_task

    job = new_job((64, 48))
    job_compress_task.run(str(job.id))
    job.refresh_from_db()
    assert job.status == "done"


def test_transparent_images_keep_their_alpha():
    from PIL import Image

    source = Image.new("RGBA", (100, 50), (255, 0, 0, 0))
    out = imaging.image_recompress(data=encode(source), max_dimension=1000, quality=80)
    assert Image.open(io.BytesIO(out.data)).mode == "RGBA"
