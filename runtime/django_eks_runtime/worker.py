"""The worker's liveness heartbeat, a step of the Celery consumer: ``install(app)`` adds it.

The liveness probe that reads the file is ``python -m django_eks_runtime.heartbeat``
(heartbeat.py). The file is the ``CELERY_HEARTBEAT_FILE`` setting (default
/tmp/celery-worker-heartbeat), touched every ``CELERY_HEARTBEAT_INTERVAL`` seconds (default 10)
while the worker makes progress.
"""

import logging
from typing import Any

from celery import Celery, bootsteps
from celery.worker import state
from celery.worker.request import Request

from django_eks_runtime import heartbeat, worker_shutdown

logger = logging.getLogger(__name__)


def install(app: Celery) -> None:
    """Add the liveness heartbeat to `app`'s workers, and bound their stop (worker_shutdown.py)."""
    app.steps["consumer"].add(Heartbeat)
    worker_shutdown.register()


class Heartbeat(bootsteps.StartStopStep):
    """Touch the liveness file from the worker's parent process while the worker makes progress.

    The parent's timer keeps running while the pool child is busy with a long
    CPU-bound task, so a slow job never looks like a dead worker. A delivery that no task
    holds for two beats in a row is stranded (see ``heartbeat.stranded_deliveries``): the
    file is left to go stale, so that the liveness probe fails and kubelet restarts the worker.

    A step of the consumer, registered with each event loop it starts: when the broker
    connection drops, Celery 5.6.3's ``asynloop`` clears the hub's timer, every periodic entry
    with it (``celery/worker/loops.py`` lines 100-130: ``hub.reset()`` then
    ``hub.timer.clear()``), and ``Consumer.start`` restarts the consumer's blueprint
    (``celery/worker/consumer/consumer.py`` lines 367-371, ``blueprint.restart(self)``), whose
    next loop calls every consumer step's ``register_with_event_loop`` again (``loops.py`` line
    63, ``Consumer.register_with_event_loop`` at line 414). A timer registered once, at the
    worker's start, never fired again after the first reconnect.
    """

    requires = {"celery.worker.consumer.tasks:Tasks"}

    def __init__(self, c: Any, **kwargs: Any) -> None:
        from django.conf import settings

        self.path = heartbeat.heartbeat_file()
        self.interval = float(getattr(settings, "CELERY_HEARTBEAT_INTERVAL", heartbeat.DEFAULT_INTERVAL_SECONDS))
        self.tref: Any = None
        self.suspects: set[Any] = set()
        self.stranded: set[Any] = set()
        super().__init__(c, **kwargs)

    def start(self, c: Any) -> None:
        # Connected (again): nothing is stranded on a new connection.
        self.suspects, self.stranded = set(), set()
        heartbeat.touch(self.path)

    def register_with_event_loop(self, c: Any, hub: Any) -> None:
        if self.tref is not None:
            self.tref.cancel()
        self.tref = hub.timer.call_repeatedly(self.interval, self.beat, (c,))

    def beat(self, consumer: Any) -> None:
        stranded = self.stranded_now(consumer)
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
    def stranded_now(consumer: Any) -> set[Any]:
        task_consumer = getattr(consumer, "task_consumer", None)
        channel = getattr(task_consumer, "channel", None)
        qos = getattr(channel, "qos", None)
        if qos is None:  # connecting: nothing delivered on this connection yet
            return set()
        # Received and not finished, plus those waiting for their countdown in the timer (a
        # database error's retry): both hold a delivery on purpose.
        requests = [*state.reserved_requests, *scheduled_requests(consumer.timer)]
        stranded = heartbeat.stranded_deliveries(qos, requests)
        if stranded is None:
            # Without the delivery tags: stuck when it holds nothing yet may take nothing.
            return {"prefetch-exhausted"} if not requests and not qos.can_consume() else set()
        return set(stranded)

    # Not on stop(): a warm shutdown stops the consumer and drains the pool, and the liveness
    # probe must not fail while the running job finishes.
    def shutdown(self, c: Any) -> None:
        if self.tref is not None:
            self.tref.cancel()
        heartbeat.remove(self.path)


def scheduled_requests(timer: Any) -> list[Request]:
    # As `celery inspect scheduled` lists them.
    entries = (getattr(waiting.entry, "args", None) for waiting in timer.schedule.queue)
    return [args[0] for args in entries if args and isinstance(args[0], Request)]
