import os

from celery import Celery, bootsteps

from config import heartbeat

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["jobs"])


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


app.steps["worker"].add(Heartbeat)
