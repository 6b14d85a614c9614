import logging
import os

from celery import Celery, bootsteps
from django_eks_runtime import worker

logger = logging.getLogger(__name__)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["jobs"])


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
# The liveness heartbeat (django_eks_runtime/worker.py), read by `python -m config.heartbeat`.
worker.install(app)
