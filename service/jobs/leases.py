"""Claims and leases of running jobs, measured by the database's clock.

A delivery that starts a job writes a new claim and a lease (``Job.claim``, ``Job.lease_until``);
the process running the job renews the lease until the job ends. The reconciler gives a job
whose lease ran out to another worker; a delivery that finds a live lease leaves the job alone.
"""

import logging
import threading
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import Error as DatabaseError
from django.db import connection
from django.db.models.functions import Now

from jobs.models import Job

logger = logging.getLogger(__name__)


class JobBusy(Exception):
    """Another delivery holds the job's lease: it is running it now, on a live worker."""

    def __init__(self, job_id: object, seconds: float) -> None:
        super().__init__(f"job {job_id} is running elsewhere; its lease ends in {seconds:.0f}s")
        self.seconds = seconds


class JobInterrupted(Exception):
    """A database error after this delivery claimed the job: the delivery that carries
    ``claim`` goes on with the same attempt."""

    def __init__(self, claim: uuid.UUID) -> None:
        super().__init__(f"interrupted by a database error; claim {claim}")
        self.claim = claim


def db_now() -> datetime:
    """The database's clock: every age the reconciler and the leases compare is measured by it,
    never by a pod's clock."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement_timestamp()")
        return cursor.fetchone()[0]


def lease_length() -> timedelta:
    return timedelta(seconds=settings.JOBS_LEASE_SECONDS)


class LeaseKeeper(threading.Thread):
    """Renews a running job's lease every third of its length, on a connection of its own.

    A thread of the process that runs the job: when that process dies (SIGKILL, OOM kill, the
    hard time limit), the lease runs out and the reconciler gives the job to another worker.
    A database error is logged and retried at the next renewal.
    """

    def __init__(self, job_id: uuid.UUID, claim: uuid.UUID) -> None:
        super().__init__(name=f"lease-{job_id}", daemon=True)
        self.job_id, self.claim = job_id, claim
        self.stopped = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopped.wait(settings.JOBS_LEASE_SECONDS / 3):
                try:
                    Job.objects.filter(pk=self.job_id, claim=self.claim, status=Job.Status.RUNNING).update(
                        lease_until=Now() + lease_length())
                except DatabaseError as exc:
                    logger.warning("job %s: lease not renewed: %s", self.job_id, exc)
                    connection.close()
        finally:
            connection.close()

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=10)
