import logging
import os
import time

from celery import Celery
from django_eks_runtime import worker

from metricsite.work import burn

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "metricsite.settings")

logger = logging.getLogger("metricsite.tasks")

app = Celery("metricsite")
app.config_from_object("django.conf:settings", namespace="CELERY")
worker.install(app)


@app.task(name="nap")
def nap(seconds: float) -> None:
    time.sleep(seconds)


@app.task(name="burn")
def burn_task(rounds: int) -> None:
    logger.warning("burning %d rounds", rounds)
    burn(rounds)


@app.task(name="fail")
def fail() -> None:
    raise ValueError("this task fails")


@app.task(name="flaky", bind=True, max_retries=1)
def flaky(self) -> None:
    if self.request.retries == 0:
        raise self.retry(countdown=0)


@app.task(name="crash")
def crash() -> None:
    os._exit(1)  # the pool process dies: only the main process sees the failure


@app.task(name="stuck", time_limit=1)
def stuck() -> None:
    time.sleep(30)  # killed at the hard time limit


@app.task(name="later")
def later() -> None:
    pass


@app.task(name="early")
def early() -> None:
    pass


@app.task(name="held")
def held() -> None:
    pass


@app.task(name="tick")
def tick() -> None:
    pass
