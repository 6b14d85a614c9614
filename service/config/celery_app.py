import logging
import os

from celery import Celery, bootsteps

from config import heartbeat

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["jobs"])

logger = logging.getLogger(__name__)


class Heartbeat(bootsteps.StartStopStep):
    """Touch the liveness file from the worker's parent process.

    The parent's timer keeps running while the pool child is busy with a long
    CPU-bound task, so a slow job never looks like a dead worker.
    """

    requires = {"celery.worker.components:Timer"}

    def start(self, worker):
        from django.conf import settings

        self.path = settings.CELERY_HEARTBEAT_FILE
        heartbeat.touch(self.path)
        self.tref = worker.timer.call_repeatedly(settings.CELERY_HEARTBEAT_INTERVAL, heartbeat.touch, (self.path,))

    def stop(self, worker):
        self.tref.cancel()
        heartbeat.remove(self.path)


class FileStoreCheck(bootsteps.StartStopStep):
    """Refuse to start a worker that cannot reach the uploads and results storage.

    A worker has no readiness probe: started against a missing bucket, or with credentials S3
    refuses, it would take every job and fail to read it. So it checks the bucket (HeadBucket)
    before it consumes anything and exits 1 with a message naming the bucket; Kubernetes
    restarts it with a growing back-off, the pod shows CrashLoopBackOff, and the jobs wait in
    the queue for a worker that can run them.
    """

    def start(self, worker):
        from jobs.files import FileStoreUnavailable, file_store_check

        try:
            file_store_check()
        except FileStoreUnavailable as exc:
            logger.critical("worker cannot start: uploads and results are unreachable: %s", exc)
            raise SystemExit(1) from exc


app.steps["worker"].add(FileStoreCheck)
app.steps["worker"].add(Heartbeat)
