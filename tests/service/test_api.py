"""The JSON API as a client sees it, through Django's test client."""

import io
import json
import uuid

import pytest
from conftest import encode, photo_like
from django.test import Client, override_settings
from PIL import Image

from jobs import files, services
from jobs.models import Job, JobResult

pytestmark = pytest.mark.django_db


@pytest.fixture
def client() -> Client:
    return Client()


def upload(client: Client, data: bytes, *, name: str = "photo.png", field: str = "image"):
    return client.post("/api/jobs", {field: _named(data, name)})


def _named(data: bytes, name: str) -> io.BytesIO:
    f = io.BytesIO(data)
    f.name = name
    return f


def test_upload_creates_queued_job_and_enqueues_on_commit(client, png_bytes, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = upload(client, png_bytes)
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "queued"
    assert response["Location"] == f"/api/jobs/{body['id']}"
    job = Job.objects.get(pk=body["id"])
    assert job.input_key == f"uploads/{job.id}"
    assert files.file_read(key=job.input_key) == png_bytes
    assert (job.input_width, job.input_height, job.input_content_type) == (640, 480, "image/png")
    # Nothing is sent to the broker until the transaction commits.
    assert len(callbacks) == 1


def test_status_reports_timings_and_sizes_once_done(client, png_bytes):
    job_id = upload(client, png_bytes).json()["id"]
    queued = client.get(f"/api/jobs/{job_id}").json()
    assert queued["status"] == "queued"
    assert queued["output"] is None
    assert queued["input"] == {"bytes": len(png_bytes), "content_type": "image/png", "width": 640, "height": 480}

    services.job_compress(job_id=job_id)
    done = client.get(f"/api/jobs/{job_id}").json()
    assert done["status"] == "done"
    assert done["processing_ms"] is not None and done["started_at"] and done["finished_at"]
    assert 0 < done["output"]["bytes"] < len(png_bytes)
    result = client.get(f"/api/jobs/{job_id}/result")
    assert result.status_code == 200
    assert result["Content-Type"] == "image/webp"
    assert result["Content-Disposition"] == f'inline; filename="{job_id}.webp"'
    image = Image.open(io.BytesIO(b"".join(result.streaming_content)))
    assert image.format == "WEBP" and image.size == (640, 480)


def test_result_is_409_while_not_done(client, png_bytes):
    job_id = upload(client, png_bytes).json()["id"]
    response = client.get(f"/api/jobs/{job_id}/result")
    assert response.status_code == 409
    assert response.json()["error"] == "not_ready"
    assert response.json()["status"] == "queued"


def test_result_of_a_failed_job_is_409_failed_with_its_error(client, png_bytes):
    job_id = upload(client, png_bytes).json()["id"]
    services.job_fail(job_id=job_id, error="OSError: image file is truncated")
    response = client.get(f"/api/jobs/{job_id}/result")
    assert response.status_code == 409
    body = response.json()
    assert (body["error"], body["status"]) == ("failed", "failed")
    assert body["job_error"] == "OSError: image file is truncated"
    assert "OSError: image file is truncated" in body["detail"]


@pytest.mark.parametrize("path", ["/api/jobs/{id}", "/api/jobs/{id}/result"])
@pytest.mark.parametrize("job_id", [str(uuid.uuid4()), "not-a-uuid"], ids=["unknown-uuid", "not-a-uuid"])
def test_unknown_job_is_404_json(client, path, job_id):
    response = client.get(path.format(id=job_id))
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_unknown_route_is_404_json(client):
    response = client.get("/nowhere")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_missing_field(client, png_bytes):
    response = upload(client, png_bytes, field="file")
    assert response.status_code == 400
    assert response.json()["error"] == "missing_field"
    assert "image" in response.json()["detail"]


def test_not_multipart(client):
    response = client.post("/api/jobs", data=json.dumps({"image": "x"}), content_type="application/json")
    assert response.status_code == 415
    assert response.json()["error"] == "unsupported_media_type"


def test_not_an_image_despite_extension(client):
    response = upload(client, b"%PDF-1.4 this is not an image at all" * 20, name="photo.jpg")
    assert response.status_code == 400
    assert response.json()["error"] == "not_an_image"
    assert not Job.objects.exists()


def test_empty_file(client):
    response = upload(client, b"", name="photo.png")
    assert response.status_code == 400
    assert response.json()["error"] == "not_an_image"


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "GIF"])
def test_truncated_image(client, fmt):
    data = encode(photo_like(400, 300), fmt)
    response = upload(client, data[: len(data) // 2], name=f"photo.{fmt.lower()}")
    assert response.status_code == 400
    assert response.json()["error"] == "corrupt_image"
    assert not Job.objects.exists()


def test_too_large_is_413(client):
    data = encode(photo_like(300, 200))
    with override_settings(JOBS_MAX_UPLOAD_BYTES=len(data) - 1):
        response = upload(client, data)
    assert response.status_code == 413
    assert response.json()["error"] == "too_large"
    assert response.json()["max_bytes"] == len(data) - 1


def test_announced_too_large_is_413_without_reading_the_body(client):
    with override_settings(JOBS_MAX_UPLOAD_BYTES=1000):
        response = client.generic(
            "POST",
            "/api/jobs",
            data=b"x" * 10,
            content_type="multipart/form-data; boundary=xyz",
            CONTENT_LENGTH=str(10_000_000),
        )
    assert response.status_code == 413


def test_too_many_pixels(client):
    # A small file that declares many pixels: the decompression-bomb shape.
    data = encode(Image.new("L", (4000, 3000)), "PNG", optimize=True)
    assert len(data) < 100_000
    with override_settings(JOBS_MAX_PIXELS=10_000_000):
        response = upload(client, data)
    assert response.status_code == 400
    assert response.json()["error"] == "too_many_pixels"
    assert "12000000" in response.json()["detail"]


@override_settings(API_IO_ENABLED=True)
def test_wrong_methods(client):
    response = client.get("/api/jobs")
    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed"
    assert response["Allow"] == "POST"
    assert client.post(f"/api/jobs/{uuid.uuid4()}").status_code == 405
    assert client.delete("/api/io?ms=1").status_code == 405


@override_settings(API_IO_ENABLED=True)
@pytest.mark.parametrize("ms", ["-1", "5001", "abc", "1.5", ""])
def test_io_rejects_bad_ms(client, ms):
    response = client.get("/api/io", {"ms": ms})
    assert response.status_code == 400
    assert response.json()["error"] == "bad_ms"


@override_settings(API_IO_ENABLED=True)
def test_io_sleeps(client):
    response = client.get("/api/io", {"ms": "5"})
    assert response.status_code == 200
    assert response.json() == {"slept_ms": 5}


@override_settings(ALLOWED_HOSTS=["api.example.com"], SECURE_SSL_REDIRECT=True, API_IO_ENABLED=True)
def test_probes_answer_before_host_validation_and_ssl_redirect(client):
    # ALB health checks and kubelet probes use plain HTTP with the pod IP as Host.
    assert client.get("/healthz", HTTP_HOST="10.1.2.3").json() == {"status": "ok"}
    ready = client.get("/readyz", HTTP_HOST="10.1.2.3")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "redis": "ok", "files": "ok"}
    # Everything else still gets both protections.
    assert client.get("/api/io?ms=0", HTTP_HOST="10.1.2.3").status_code == 400
    assert client.get("/api/io?ms=0", HTTP_HOST="api.example.com").status_code == 301


def test_readyz_names_the_failing_dependency(client):
    with override_settings(REDIS_URL="redis://127.0.0.1:1/0"):
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == "ok"
    assert response.json()["checks"]["redis"].startswith("unavailable")


def test_compress_is_idempotent(png_bytes):
    job_id = upload(Client(), png_bytes).json()["id"]
    services.job_compress(job_id=job_id)
    first = JobResult.objects.get(job_id=job_id)
    services.job_compress(job_id=job_id)
    job = Job.objects.get(pk=job_id)
    assert job.status == "done"
    assert job.attempts == 1  # the second delivery saw "done" and did nothing
    assert JobResult.objects.filter(job_id=job_id).count() == 1
    assert JobResult.objects.get(job_id=job_id).created_at == first.created_at
