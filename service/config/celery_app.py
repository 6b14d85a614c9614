import logging
import os
from typing import Any

from celery import Celery, bootsteps
from celery.worker import state
from celery.worker.request import Request

from config import heartbeat

logger = logging.getLogger(__name__)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["jobs"])


class Heartbeat(bootsteps.StartStopStep):
    """Touch the liveness file from the worker's parent process while the worker makes progress.

    The parent's timer keeps running while the pool child is busy with a long
    CPU-bound task, so a slow job never looks like a dead worker. A delivery that no task
    holds for two beats in a row is stranded (see ``heartbeat.stranded_deliveries``): the
    file is left to go stale, so that the liveness probe fails and kubelet restarts the worker.
    """

    requires = {"celery.worker.components:Timer"}

    def start(self, worker):
        from django.conf import settings

        self.path = settings.CELERY_HEARTBEAT_FILE
        self.suspects: set[Any] = set()
        self.stranded: set[Any] = set()
        heartbeat.touch(self.path)
        self.tref = worker.timer.call_repeatedly(settings.CELERY_HEARTBEAT_INTERVAL, self.beat, (worker,))

    def beat(self, worker) -> None:
        stranded = self.stranded_now(worker)
        # Seen on two beats in a row: not a message between its delivery and its request.
        lasting = stranded & self.suspects
        self.suspects = stranded
        if lasting and lasting != self.stranded:
            logger.error(
                "worker holds %d broker deliveries that no task will finish (an acknowledgement did not "
                "reach Redis); it takes fewer messages, or none: liveness heartbeat stopped so that it is "
                "restarted", len(lasting))
        self.stranded = lasting
        if not lasting:
            heartbeat.touch(self.path)

    @staticmethod
    def stranded_now(worker) -> set[Any]:
        task_consumer = getattr(worker.consumer, "task_consumer", None)
        channel = getattr(task_consumer, "channel", None)
        qos = getattr(channel, "qos", None)
        if qos is None:  # connecting: nothing delivered on this connection yet
            return set()
        # Received and not finished, plus those waiting for their countdown in the timer (a
        # database error's retry): both hold a delivery on purpose.
        requests = [*state.reserved_requests, *scheduled_requests(worker.consumer.timer)]
        stranded = heartbeat.stranded_deliveries(qos, requests)
        if stranded is None:
            # Without the delivery tags: stuck when it holds nothing yet may take nothing.
            return {"prefetch-exhausted"} if not requests and not qos.can_consume() else set()
        return set(stranded)

    def stop(self, worker):
        self.tref.cancel()
        heartbeat.remove(self.path)


def scheduled_requests(timer: Any) -> list[Request]:
    # As `celery inspect scheduled` lists them.
    entries = (getattr(waiting.entry, "args", None) for waiting in timer.schedule.queue)
    return [args[0] for args in entries if args and isinstance(args[0], Request)]


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
