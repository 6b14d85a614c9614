"""jobs.services: idempotent compression under duplicate and concurrent deliveries."""

import io
import threading

import pytest
from conftest import encode, job_stored, photo_like
from django.db import connection

from jobs import imaging, services
from jobs.models import Job, JobResult


def new_job(size=(640, 480)) -> Job:
    f = io.BytesIO(encode(photo_like(*size)))
    return services.job_create(file=f)


def stored_job(size=(640, 480)) -> Job:
    """A committed job whose message was never published: only the deliveries a test makes run it."""
    return job_stored(encode(photo_like(*size)), *size)


@pytest.mark.django_db(transaction=True)
def test_concurrent_deliveries_store_one_result(monkeypatch):
    # Committed for real (the two deliveries use their own connections), but not published:
    # a worker on the same Redis database would otherwise be a third delivery.
    job = stored_job()
    # Both deliveries are inside the CPU-bound part at the same time.
    barrier = threading.Barrier(2, timeout=30)
    recompress = imaging.image_recompress

    def in_lockstep(**kwargs):
        barrier.wait()
        return recompress(**kwargs)

    monkeypatch.setattr(imaging, "image_recompress", in_lockstep)
    errors: list[BaseException] = []

    def deliver() -> None:
        try:
            services.job_compress(job_id=job.id)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    job.refresh_from_db()
    assert job.status == "done"
    assert job.attempts == 2
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
