"""Uploads and results move from PostgreSQL to the "jobs" storage; the rows keep their keys.

One migration, so one transaction on PostgreSQL: adding the key columns takes both tables'
ACCESS EXCLUSIVE locks, held until the binary columns are dropped. A web or worker pod of the
previous release writes no row in between (it waits, then fails on the missing column and
its client or task retries), so every stored byte is either moved here or never accepted. The
files are written before the commit: a migration that fails leaves files that the next run
writes again under the same keys (and the bucket's lifecycle removes in any case).

The key formats are spelled out here rather than imported: a migration must keep doing what
it did when it was written.
"""

from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.db import migrations, models


def _store(key: str, data: bytes, content_type: str) -> str:
    content = ContentFile(bytes(data))
    content.content_type = content_type
    return storages["jobs"].save(key, content)


def files_to_storage(apps, schema_editor):
    Job = apps.get_model("jobs", "Job")
    JobResult = apps.get_model("jobs", "JobResult")
    # One row's bytes at a time: an upload is up to 10 MiB, and the migration runs in a pod
    # sized for one web process.
    for job_id in Job.objects.values_list("id", flat=True).iterator():
        data, content_type = Job.objects.values_list("input_data", "input_content_type").get(pk=job_id)
        key = _store(f"uploads/{job_id}", data, content_type)
        Job.objects.filter(pk=job_id).update(input_key=key)
    for job_id in JobResult.objects.values_list("job_id", flat=True).iterator():
        data, content_type = JobResult.objects.values_list("data", "content_type").get(pk=job_id)
        key = _store(f"results/{job_id}.webp", data, content_type)
        JobResult.objects.filter(pk=job_id).update(key=key)


def files_to_database(apps, schema_editor):
    Job = apps.get_model("jobs", "Job")
    JobResult = apps.get_model("jobs", "JobResult")
    files = storages["jobs"]
    for job_id, key in Job.objects.values_list("id", "input_key").iterator():
        with files.open(key, "rb") as stored:
            Job.objects.filter(pk=job_id).update(input_data=stored.read())
    for job_id, key in JobResult.objects.values_list("job_id", "key").iterator():
        with files.open(key, "rb") as stored:
            JobResult.objects.filter(pk=job_id).update(data=stored.read())


class Migration(migrations.Migration):

    dependencies = [
        ("jobs", "0002_job_enqueued_at"),
    ]

    operations = [
        migrations.AddField(
            model_name="job",
            name="input_key",
            field=models.CharField(default="", max_length=200),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="jobresult",
            name="key",
            field=models.CharField(default="", max_length=200),
            preserve_default=False,
        ),
        # Nullable while the bytes move, so that reversing can fill them back in.
        migrations.AlterField(model_name="job", name="input_data", field=models.BinaryField(null=True)),
        migrations.AlterField(model_name="jobresult", name="data", field=models.BinaryField(null=True)),
        migrations.RunPython(files_to_storage, files_to_database),
        migrations.RemoveField(model_name="job", name="input_data"),
        migrations.RemoveField(model_name="jobresult", name="data"),
        migrations.CreateModel(
            name="ExpiredJob",
            fields=[
                ("id", models.UUIDField(editable=False, primary_key=True, serialize=False)),
                ("created_at", models.DateTimeField()),
                ("expired_at", models.DateTimeField(db_index=True)),
            ],
        ),
        migrations.AddIndex(
            model_name="job",
            index=models.Index(fields=["created_at"], name="jobs_created_idx"),
        ),
    ]
