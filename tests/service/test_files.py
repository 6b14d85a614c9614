"""Uploads and results in an S3 bucket (moto's, through boto3 and django-storages), and their expiry.

Each step runs with the storage a pod of its kind has (its own access keys), and every S3 call
the steps make is evaluated against that kind's IAM role as the program renders it.
"""

import io
import threading
import uuid
from datetime import timedelta

import pytest
import requests
from conftest import encode, photo_like, s3_storage_settings
from django.db import connection, transaction
from django.test import Client, override_settings
from django.utils import timezone
from PIL import Image
from s3_server import refused_by_role
from service_processes import free_port

from jobs import files, services
from jobs.reconcile import ReconcileReport, jobs_reconcile
from jobs.models import ExpiredJob, Job, JobResult

RETENTION = timedelta(days=7)


def as_pod(s3_server, bucket: str, kind: str):
    """The settings a process of this pod kind runs with: the bucket, and its own keys."""
    return override_settings(STORAGES=s3_storage_settings(s3_server, bucket, kind))


def upload(data: bytes):
    image = io.BytesIO(data)
    image.name = "photo.png"
    return Client().post("/api/jobs", {"image": image})


def assert_each_call_allowed(s3_server, bucket: str) -> None:
    calls = s3_server.calls_on(bucket)
    assert calls, "no S3 call was recorded"
    assert list(refused_by_role(calls)) == []


def done_job(s3_server, bucket: str, size=(640, 480)) -> Job:
    with as_pod(s3_server, bucket, "web"):
        response = upload(encode(photo_like(*size)))
    assert response.status_code == 201, response.content
    job_id = response.json()["id"]
    with as_pod(s3_server, bucket, "worker"):
        services.job_compress(job_id=job_id)
    return Job.objects.get(pk=job_id)


@pytest.mark.django_db
def test_the_upload_is_put_in_the_bucket_with_its_inspected_type_before_its_row(s3_server, s3_bucket, png_bytes):
    with as_pod(s3_server, s3_bucket, "web"):
        image = io.BytesIO(png_bytes)
        image.name = "photo.jpg"  # a name and a declared type that lie: neither reaches the object
        response = Client().post("/api/jobs", {"image": image})
    assert response.status_code == 201, response.content
    job = Job.objects.get(pk=response.json()["id"])
    assert job.input_key == f"uploads/{job.id}"
    assert s3_server.keys(s3_bucket) == [f"uploads/{job.id}"]
    stored = s3_server.client().get_object(Bucket=s3_bucket, Key=job.input_key)
    assert stored["Body"].read() == png_bytes
    assert stored["ContentType"] == "image/png"
    assert [call.operation for call in s3_server.calls_on(s3_bucket)] == ["PutObject"]
    assert_each_call_allowed(s3_server, s3_bucket)


@pytest.mark.django_db
def test_the_worker_reads_the_upload_and_puts_the_result_and_the_web_redirects_to_it(s3_server, s3_bucket):
    job = done_job(s3_server, s3_bucket, size=(1600, 1200))
    assert job.status == "done"
    result = JobResult.objects.get(job=job)
    assert result.key == f"results/{job.id}.webp"
    assert s3_server.keys(s3_bucket) == [f"results/{job.id}.webp", f"uploads/{job.id}"]

    with as_pod(s3_server, s3_bucket, "web"):
        body = Client().get(f"/api/jobs/{job.id}").json()
        response = Client().get(f"/api/jobs/{job.id}/result")
    assert body["output"]["url"] == f"/api/jobs/{job.id}/result"  # the API's path, not the bucket's
    assert response.status_code == 302
    assert response["Cache-Control"] == "no-store"
    location = response["Location"]
    assert location.startswith(f"{s3_server.url}/{s3_bucket}/results/{job.id}.webp?")
    assert "X-Amz-Expires=300" in location and "X-Amz-Signature=" in location

    # The client follows the presigned URL: S3 serves the WebP, with the type and name we signed.
    fetched = requests.get(location, timeout=10)
    assert fetched.status_code == 200
    assert fetched.headers["Content-Type"] == "image/webp"
    assert fetched.headers["Content-Disposition"] == f'inline; filename="{job.id}.webp"'
    image = Image.open(io.BytesIO(fetched.content))
    assert image.format == "WEBP" and image.size == (1280, 960)
    assert len(fetched.content) == body["output"]["bytes"]
    # A tampered URL is refused: the signature covers the key.
    assert requests.get(location.replace(f"{job.id}.webp", "x.webp"), timeout=10).status_code == 403

    operations = {(call.signer, call.operation) for call in s3_server.calls_on(s3_bucket)}
    assert {op for _, op in operations} >= {"PutObject", "HeadObject", "GetObject"}
    assert_each_call_allowed(s3_server, s3_bucket)


@pytest.mark.django_db
def test_an_upload_the_bucket_refuses_is_a_503_and_stores_nothing(s3_server, png_bytes):
    missing = f"django-eks-test-missing-{uuid.uuid4().hex[:8]}"
    with as_pod(s3_server, missing, "web"):
        response = upload(png_bytes)
    assert response.status_code == 503, response.content
    assert response.json()["error"] == "storage_unavailable"
    assert response["Retry-After"] == "5"
    assert not Job.objects.exists()


@pytest.mark.django_db
def test_a_storage_outage_in_the_worker_requeues_the_job_without_spending_an_attempt(s3_server, s3_bucket, png_bytes):
    with as_pod(s3_server, s3_bucket, "web"):
        job_id = upload(png_bytes).json()["id"]
    # S3 does not answer (nothing listens on the endpoint's port).
    unreachable = s3_storage_settings(s3_server, s3_bucket, "worker")
    unreachable["jobs"]["OPTIONS"]["endpoint_url"] = f"http://127.0.0.1:{free_port()}"
    with override_settings(STORAGES=unreachable), pytest.raises(files.FileStoreUnavailable, match=s3_bucket):
        services.job_compress(job_id=job_id)
    job = Job.objects.get(pk=job_id)
    assert (job.status, job.attempts, job.started_at) == ("queued", 0, None)
    with as_pod(s3_server, s3_bucket, "worker"):
        services.job_compress(job_id=job_id)  # the retry, once the bucket answers
    job.refresh_from_db()
    assert (job.status, job.attempts) == ("done", 1)


# --- expiry ---------------------------------------------------------------------------------


def reconcile(s3_server, bucket: str, **kwargs) -> ReconcileReport:
    with as_pod(s3_server, bucket, "reconciler"):
        return jobs_reconcile(queued_after=timedelta(minutes=10), running_after=timedelta(minutes=6),
                              max_attempts=3, retention=RETENTION, tombstones_kept=timedelta(days=30),
                              **kwargs)


def age(job: Job, by: timedelta) -> None:
    Job.objects.filter(pk=job.pk).update(created_at=timezone.now() - by)


@pytest.mark.django_db
def test_jobs_past_their_retention_lose_both_files_and_their_row_and_answer_410(s3_server, s3_bucket):
    old, recent = done_job(s3_server, s3_bucket), done_job(s3_server, s3_bucket)
    age(old, RETENTION + timedelta(minutes=1))
    age(recent, RETENTION - timedelta(minutes=1))  # counted from creation, not from when it finished
    with as_pod(s3_server, s3_bucket, "web"):
        # Gone from the moment its retention ends, before the reconciler has run.
        for path in (f"/api/jobs/{old.id}", f"/api/jobs/{old.id}/result"):
            response = Client().get(path)
            assert response.status_code == 410, path
            assert response.json()["error"] == "expired"

    report = reconcile(s3_server, s3_bucket)
    assert report.expired == [old.id] and report.expiry_error is None
    assert not Job.objects.filter(pk=old.id).exists()
    assert not JobResult.objects.filter(job_id=old.id).exists()
    assert ExpiredJob.objects.filter(pk=old.id).exists()
    assert s3_server.keys(s3_bucket) == [f"results/{recent.id}.webp", f"uploads/{recent.id}"]
    reconciler_calls = [c for c in s3_server.calls_on(s3_bucket) if c.signer.endswith("RECONCILER")]
    assert sorted((c.operation, c.key) for c in reconciler_calls) == [
        ("DeleteObject", f"results/{old.id}.webp"), ("DeleteObject", f"uploads/{old.id}")]
    assert_each_call_allowed(s3_server, s3_bucket)

    with as_pod(s3_server, s3_bucket, "web"):
        client = Client()
        for path in (f"/api/jobs/{old.id}", f"/api/jobs/{old.id}/result"):
            response = client.get(path)
            assert response.status_code == 410, path
            assert response.json() == {"error": "expired", "retention_days": 7,
                                       "detail": f"job {old.id} expired: jobs and their files are kept 7 days "
                                                 "after creation"}
        assert client.get(f"/api/jobs/{recent.id}/result").status_code == 302
        never = uuid.uuid4()
        assert client.get(f"/api/jobs/{never}").status_code == 404
        assert client.get(f"/api/jobs/{never}/result").status_code == 404


@pytest.mark.django_db
def test_an_expiry_that_stops_after_deleting_files_is_finished_by_the_next_pass(s3_server, s3_bucket):
    job = done_job(s3_server, s3_bucket)
    age(job, RETENTION + timedelta(hours=1))

    class Crash(Exception):
        pass

    # The files are deleted, then the pass dies before its transaction commits.
    with pytest.raises(Crash), transaction.atomic():
        assert reconcile(s3_server, s3_bucket).expired == [job.id]
        raise Crash
    assert Job.objects.filter(pk=job.id).exists() and not ExpiredJob.objects.exists()
    assert s3_server.keys(s3_bucket) == []
    with as_pod(s3_server, s3_bucket, "web"):
        assert Client().get(f"/api/jobs/{job.id}/result").status_code == 410  # never a link to a missing file

    # The next pass deletes the (missing) files again, which succeeds, then the row.
    assert reconcile(s3_server, s3_bucket).expired == [job.id]
    assert not Job.objects.filter(pk=job.id).exists() and ExpiredJob.objects.filter(pk=job.id).exists()
    assert_each_call_allowed(s3_server, s3_bucket)


@pytest.mark.django_db(transaction=True)
def test_concurrent_reconcilers_skip_the_jobs_another_one_holds(s3_server, s3_bucket):
    held, free = done_job(s3_server, s3_bucket), done_job(s3_server, s3_bucket)
    for job in (held, free):
        age(job, RETENTION + timedelta(hours=1))
    locked, release = threading.Event(), threading.Event()

    def other_reconciler() -> None:
        try:
            with transaction.atomic():
                Job.objects.select_for_update().get(pk=held.id)
                locked.set()
                release.wait(timeout=30)
        finally:
            connection.close()

    thread = threading.Thread(target=other_reconciler)
    thread.start()
    try:
        assert locked.wait(timeout=10)
        assert reconcile(s3_server, s3_bucket).expired == [free.id]  # does not wait for the held row
        assert s3_server.keys(s3_bucket) == [f"results/{held.id}.webp", f"uploads/{held.id}"]
    finally:
        release.set()
        thread.join(timeout=30)
    assert reconcile(s3_server, s3_bucket).expired == [held.id]
    assert s3_server.keys(s3_bucket) == []


@pytest.mark.django_db
def test_expired_ids_answer_410_until_their_tombstones_are_purged_then_404(s3_server, s3_bucket):
    job = done_job(s3_server, s3_bucket)
    age(job, RETENTION + timedelta(hours=1))
    reconcile(s3_server, s3_bucket)
    with as_pod(s3_server, s3_bucket, "web"):
        assert Client().get(f"/api/jobs/{job.id}").status_code == 410
    reconcile(s3_server, s3_bucket, now=timezone.now() + timedelta(days=31))
    assert not ExpiredJob.objects.exists()
    with as_pod(s3_server, s3_bucket, "web"):
        assert Client().get(f"/api/jobs/{job.id}").status_code == 404


@pytest.mark.django_db
def test_a_storage_outage_stops_the_expiry_but_not_the_requeue_pass(s3_server, s3_bucket, png_bytes):
    job = done_job(s3_server, s3_bucket)
    age(job, RETENTION + timedelta(hours=1))
    missing = f"django-eks-test-missing-{uuid.uuid4().hex[:8]}"
    with as_pod(s3_server, s3_bucket, "web"):
        stuck_id = upload(png_bytes).json()["id"]
    Job.objects.filter(pk=stuck_id).update(enqueued_at=timezone.now() - timedelta(hours=1))
    published: list[str] = []
    report = reconcile(s3_server, missing, enqueue=lambda *, job_id: published.append(str(job_id)))
    assert report.expired == [] and missing in (report.expiry_error or "")
    assert published == [stuck_id]
    assert Job.objects.filter(pk=job.id).exists()


@pytest.mark.django_db
def test_the_role_check_catches_a_call_the_web_role_may_not_make(s3_server, s3_bucket, png_bytes):
    # Without AWS_S3_FILE_OVERWRITE django-storages asks whether the key is free (HeadObject on
    # uploads/, i.e. s3:GetObject), which the web role does not allow: on AWS every upload would fail.
    storages = s3_storage_settings(s3_server, s3_bucket, "web")
    storages["jobs"]["OPTIONS"]["file_overwrite"] = False
    with override_settings(STORAGES=storages):
        assert upload(png_bytes).status_code == 201
    refused = list(refused_by_role(s3_server.calls_on(s3_bucket)))
    assert len(refused) == 1 and refused[0].startswith("web: HeadObject uploads/"), refused
    assert "needs s3:GetObject: implicitly denied" in refused[0]
