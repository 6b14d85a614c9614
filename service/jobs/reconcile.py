"""The reconciler's pass: bring back jobs nothing is working on, fail those out of attempts, expire
old ones (`python manage.py jobs_reconcile`, the reconciler CronJob, runs it)."""

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from jobs import broker
from jobs.expiry import MassExpiryRefused, jobs_expire
from jobs.files import FileStoreUnavailable
from jobs.leases import db_now
from jobs.models import Job
from jobs.services import JobQueueUnavailable, attempts_exhausted, job_enqueue

logger = logging.getLogger(__name__)


@dataclass
class ReconcileReport:
    requeued: list[uuid.UUID] = field(default_factory=list)
    failed: list[uuid.UUID] = field(default_factory=list)
    # Jobs the broker would not take this pass; the next pass tries again.
    unpublished: list[uuid.UUID] = field(default_factory=list)
    # Queued jobs whose message was in neither the queue nor the unacknowledged hash (of requeued).
    lost: list[uuid.UUID] = field(default_factory=list)
    # Jobs past their retention whose files and row were deleted this pass.
    expired: list[uuid.UUID] = field(default_factory=list)
    # Why the expiry stopped short (the storage failed, or it would expire too many); the next
    # pass goes on.
    expiry_error: str | None = None


POD_CLOCK_SKEW_WARNING = timedelta(seconds=60)


def jobs_reconcile(
    *,
    queued_after: timedelta,
    running_after: timedelta,
    max_attempts: int,
    retention: timedelta | None = None,
    tombstones_kept: timedelta | None = None,
    lost_after: timedelta | None = None,
    expire_max_fraction: float | None = None,
    now: datetime | None = None,
    enqueue: Callable[..., None] = job_enqueue,
    broker_ids: Callable[[], set[str]] = broker.broker_job_ids,
) -> ReconcileReport:
    """Bring every unfinished job that nothing is working on back to a worker, or fail it.

    Every age is measured by the database's clock (``now`` when given), never the pod's.

    - queued, last published longer than ``queued_after`` ago: its message was never
      published (the web process died after the commit) or was lost; publish again.
    - queued, last published longer than ``lost_after`` ago (when given), and its message is in
      neither the queue's list nor the unacknowledged hash (``jobs.broker``): lost with Redis;
      publish again.
    - running, its lease expired (its worker stopped renewing it: killed, OOM, node loss), or,
      for a row without a lease, started longer than ``running_after`` ago: set it back to
      queued and publish again.
    - either, with ``max_attempts`` deliveries that all died: failed, with the reason.

    - any, created longer than ``retention`` ago (when given): expired, files and row
      deleted (``jobs_expire``, refused when more than ``expire_max_fraction`` of all jobs
      would go at once); expired ids older than ``tombstones_kept`` are forgotten.

    Duplicate messages are harmless: the task skips a job that is done or failed, and defers
    one whose lease is live. Rows are locked with SKIP LOCKED, so two reconcilers never handle
    the same job.
    """
    if now is None:
        now = db_now()
        skew = timezone.now() - now
        if abs(skew) > POD_CLOCK_SKEW_WARNING:
            logger.warning("reconcile: this pod's clock is %+.0fs off the database's; ages are measured by "
                           "the database's", skew.total_seconds())
    report = ReconcileReport()
    if retention is not None:
        # First, so that nothing past its retention is published again. A storage outage
        # stops the expiry only: stuck jobs are still brought back below.
        try:
            report.expired = jobs_expire(
                created_before=now - retention,
                tombstones_before=None if tombstones_kept is None else now - tombstones_kept,
                now=now,
                max_fraction=expire_max_fraction,
            )
        except (FileStoreUnavailable, MassExpiryRefused) as exc:
            report.expiry_error = str(exc)
            logger.error("reconcile: expiry stopped: %s", exc)
    stale = Q(status=Job.Status.QUEUED, last_enqueued__lt=now - queued_after) | Q(
        status=Job.Status.RUNNING, lease_until__lt=now
    ) | Q(status=Job.Status.RUNNING, lease_until__isnull=True, started_at__lt=now - running_after)
    if lost_after is not None:
        lost = _jobs_lost(now - lost_after, broker_ids)
        stale |= Q(pk__in=lost, status=Job.Status.QUEUED, last_enqueued__lt=now - lost_after)
    with transaction.atomic():
        jobs = list(
            Job.objects.annotate(last_enqueued=Coalesce(F("enqueued_at"), F("created_at")))
            .filter(stale)
            .only("id", "status", "attempts")
            .select_for_update(skip_locked=True, of=("self",))
        )
        for job in jobs:
            if job.attempts >= max_attempts:
                Job.objects.filter(pk=job.pk).update(
                    status=Job.Status.FAILED, error=attempts_exhausted(job.attempts), finished_at=now,
                    lease_until=None,
                )
                report.failed.append(job.id)
            else:
                # Marked before publishing: a second pass does not publish it again
                # until queued_after has passed, whatever happens to this message.
                Job.objects.filter(pk=job.pk).update(status=Job.Status.QUEUED, enqueued_at=now, lease_until=None)
                report.requeued.append(job.id)
                if lost_after is not None and job.id in lost:
                    report.lost.append(job.id)
    for job_id in report.requeued:
        try:
            enqueue(job_id=job_id)
        except JobQueueUnavailable as exc:
            logger.warning("reconcile: job %s not re-enqueued: %s", job_id, exc)
            report.unpublished.append(job_id)
    if report.requeued or report.failed or report.expired:
        logger.info("reconcile: requeued %d (lost by the broker %d), failed %d, unpublished %d, expired %d",
                    len(report.requeued), len(report.lost), len(report.failed), len(report.unpublished),
                    len(report.expired))
    return report


def _jobs_lost(published_before: datetime, broker_ids: Callable[[], set[str]]) -> set[uuid.UUID]:
    """Queued jobs last published before ``published_before`` with no message in the broker."""
    candidates = set(
        Job.objects.annotate(last_enqueued=Coalesce(F("enqueued_at"), F("created_at")))
        .filter(status=Job.Status.QUEUED, last_enqueued__lt=published_before)
        .values_list("id", flat=True)
    )
    if not candidates:
        return set()
    try:
        present = broker_ids()
    except broker.BrokerUnavailable as exc:
        logger.warning("reconcile: the broker's messages could not be read; lost messages are looked for "
                       "at the next pass: %s", exc)
        return set()
    return {job_id for job_id in candidates if str(job_id) not in present}
