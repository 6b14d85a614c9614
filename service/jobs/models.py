import uuid

from django.db import models
from django.db.models.functions import Now


class Job(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    # Where the upload is in the "jobs" storage (jobs.files): the database holds metadata only.
    input_key = models.CharField(max_length=200)
    input_content_type = models.CharField(max_length=64)
    input_bytes = models.PositiveBigIntegerField()
    input_width = models.PositiveIntegerField()
    input_height = models.PositiveIntegerField()
    # How many times a worker started this job: more than one means a redelivery
    # (killed worker, visibility timeout) that the idempotent service absorbed.
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    # By the database's clock, as every age the reconciler and the API compare it with.
    created_at = models.DateTimeField(db_default=Now())
    # When a message for this job was last published; the reconciler re-enqueues from it.
    enqueued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    # The delivery running the job (a new value per claim) and until when it holds the job:
    # renewed while it runs; once past, the reconciler gives the job to another worker.
    claim = models.UUIDField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            # The reconciler's scan: unfinished jobs only (a partial index stays small).
            models.Index(
                fields=["status", "enqueued_at"],
                name="jobs_unfinished_idx",
                condition=models.Q(status__in=["queued", "running"]),
            ),
            # The reconciler's expiry: jobs created before the retention cut-off.
            models.Index(fields=["created_at"], name="jobs_created_idx"),
        ]

    def __str__(self) -> str:
        return f"job {self.id} ({self.status})"


class JobResult(models.Model):
    # One-to-one, enforced by the database: duplicate deliveries cannot create two results.
    job = models.OneToOneField(Job, on_delete=models.CASCADE, primary_key=True, related_name="result")
    # Where the compressed image is in the "jobs" storage.
    key = models.CharField(max_length=200)
    content_type = models.CharField(max_length=64)
    bytes = models.PositiveBigIntegerField()
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"result of job {self.job_id}"


class ExpiredJob(models.Model):
    """The id of a job the reconciler expired, so that the API answers 410 Gone, not 404.

    Kept JOBS_TOMBSTONE_DAYS after the expiry, then purged: from then on the id answers 404,
    like one that never existed.
    """

    id = models.UUIDField(primary_key=True, editable=False)
    created_at = models.DateTimeField()
    expired_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"expired job {self.id}"
