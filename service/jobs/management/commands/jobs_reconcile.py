"""python manage.py jobs_reconcile [--every SECONDS]

One pass by default (what the Kubernetes CronJob runs); ``--every`` repeats passes,
for a laptop or a test. Thresholds come from settings (see config/settings/base.py).
A pass also expires the jobs past JOBS_RETENTION_DAYS: their files and rows are deleted.
"""

import time
from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import Error as DatabaseError
from django.db import connection

from jobs import reconcile


class Command(BaseCommand):
    help = ("Expire jobs past their retention, re-enqueue jobs stuck queued or running, "
            "and fail those past their attempt limit.")

    def add_arguments(self, parser):
        parser.add_argument("--every", type=float, default=None,
                            help="repeat a pass every SECONDS until stopped (default: one pass)")
        parser.add_argument("--allow-mass-expiry", action="store_true",
                            help="expire every job past its retention even when that is more than "
                                 "JOBS_EXPIRE_MAX_PERCENT of all jobs")

    def handle(self, *args, every: float | None = None, allow_mass_expiry: bool = False, **options):
        while True:
            try:
                report = reconcile.jobs_reconcile(
                    queued_after=timedelta(seconds=settings.JOBS_REQUEUE_QUEUED_AFTER),
                    running_after=timedelta(
                        seconds=settings.CELERY_TASK_TIME_LIMIT + settings.JOBS_REQUEUE_RUNNING_GRACE
                    ),
                    max_attempts=settings.JOBS_MAX_ATTEMPTS,
                    retention=timedelta(days=settings.JOBS_RETENTION_DAYS),
                    tombstones_kept=timedelta(days=settings.JOBS_TOMBSTONE_DAYS),
                    lost_after=timedelta(seconds=settings.JOBS_LOST_AFTER),
                    expire_max_fraction=None if allow_mass_expiry else settings.JOBS_EXPIRE_MAX_PERCENT / 100,
                )
            except DatabaseError as exc:
                if every is None:
                    raise
                self.stderr.write(f"reconcile: database unavailable: {exc}")
                connection.close()
            else:
                self.stdout.write(
                    f"reconcile: requeued {len(report.requeued)} (lost by the broker {len(report.lost)}), "
                    f"failed {len(report.failed)}, "
                    f"unpublished {len(report.unpublished)}, expired {len(report.expired)}"
                )
                if report.expiry_error is not None:
                    if every is None:
                        # The CronJob's run fails, visibly; the next run expires the rest.
                        raise CommandError(f"reconcile: expiry stopped: {report.expiry_error}")
                    self.stderr.write(f"reconcile: expiry stopped: {report.expiry_error}")
            if every is None:
                return
            time.sleep(every)
