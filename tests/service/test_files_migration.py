"""The migration that moves uploads and results out of PostgreSQL loses no byte of an existing deployment."""

import pytest
from conftest import encode, photo_like, s3_storage_settings
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import override_settings
from s3_server import refused_by_role

BEFORE = ("jobs", "0002_job_enqueued_at")
MOVE = ("jobs", "0003_files_in_storage")


def migrate_to(target: tuple[str, str]):
    executor = MigrationExecutor(connection)
    executor.migrate([target])
    return MigrationExecutor(connection).loader.project_state([target]).apps


@pytest.mark.django_db(transaction=True)
def test_the_migration_puts_every_upload_and_result_in_the_bucket_before_dropping_the_columns(s3_server, s3_bucket):
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes("jobs")[0]
    try:
        old = migrate_to(BEFORE)
        Job, JobResult = old.get_model("jobs", "Job"), old.get_model("jobs", "JobResult")
        uploads = {size: encode(photo_like(*size)) for size in ((64, 48), (80, 60))}
        jobs = {size: Job.objects.create(input_data=data, input_content_type="image/png", input_bytes=len(data),
                                         input_width=size[0], input_height=size[1], status="done")
                for size, data in uploads.items()}
        result = encode(photo_like(32, 24), "WEBP")
        done = jobs[(64, 48)]
        JobResult.objects.create(job=done, data=result, content_type="image/webp", bytes=len(result), width=32,
                                 height=24)

        # The migrate Job's pod, with its own role.
        with override_settings(STORAGES=s3_storage_settings(s3_server, s3_bucket, "migrate")):
            new = migrate_to(MOVE)
        Job, JobResult = new.get_model("jobs", "Job"), new.get_model("jobs", "JobResult")
        client = s3_server.client()
        for size, job in jobs.items():
            moved = Job.objects.get(pk=job.pk)
            assert moved.input_key == f"uploads/{job.pk}"
            stored = client.get_object(Bucket=s3_bucket, Key=moved.input_key)
            assert stored["Body"].read() == uploads[size] and stored["ContentType"] == "image/png"
        moved_result = JobResult.objects.get(pk=done.pk)
        assert moved_result.key == f"results/{done.pk}.webp"
        assert client.get_object(Bucket=s3_bucket, Key=moved_result.key)["Body"].read() == result
        assert not any(f.name in {"input_data", "data"} for m in (Job, JobResult) for f in m._meta.get_fields())
        calls = s3_server.calls_on(s3_bucket)
        assert {call.operation for call in calls} == {"PutObject"}
        assert list(refused_by_role(calls)) == []

        # And back: the bytes return to their columns (with credentials that may read the bucket).
        with override_settings(STORAGES=s3_storage_settings(s3_server, s3_bucket, "admin")):
            old = migrate_to(BEFORE)
        Job, JobResult = old.get_model("jobs", "Job"), old.get_model("jobs", "JobResult")
        for size, job in jobs.items():
            assert bytes(Job.objects.get(pk=job.pk).input_data) == uploads[size]
        assert bytes(JobResult.objects.get(pk=done.pk).data) == result
    finally:
        with override_settings(STORAGES=s3_storage_settings(s3_server, s3_bucket, "admin")):
            migrate_to(latest)
