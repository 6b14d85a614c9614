"""A worker told to stop leaves within a bounded time and loses no task: SIGTERM, then at most
``WORKER_SOFT_SHUTDOWN_SECONDS`` for the running tasks, then the unfinished ones go back to the
queue.

SIGTERM (the kubelet's, at a rollout or a KEDA scale-in) starts Celery's warm shutdown: the
worker stops taking messages and waits for its running tasks, without a bound. This module
bounds it: the same SIGTERM starts a timer in the worker's main process which, when the window
ends with the worker still there, sends the worker SIGQUIT, Celery's cold shutdown. A worker
whose tasks end within the window leaves as soon as they end (the timer dies with it).

The cold shutdown (Celery 5.6.3, ``celery/apps/worker.py`` ``on_cold_shutdown``, lines
369-430) cancels the task consumer, then ``Consumer.cancel_active_requests``
(``celery/worker/consumer/consumer.py`` lines 742-773) sends SIGTERM to each pool child running
a late-acknowledged task that has not succeeded, without acknowledging its message. In the child,
billiard's handler (``billiard/common.py`` ``_shutdown_cleanup``, lines 124-132) raises
SystemExit, so the task's ``finally`` blocks and ``except`` clauses run, and the pool reports no
result for it (``billiard/pool.py`` lines 370-401: nothing gets acknowledged for a task that did
not finish). The message stays unacknowledged until the worker closes its broker channel, when
kombu's Redis transport puts it back on the queue (``kombu/transport/virtual/base.py``
``restore_unacked_once``, line 277, called from ``Channel.close`` at line 806), or, if the pool
reports the child lost first, ``task_reject_on_worker_lost`` requeues it at once
(``kombu/transport/redis.py`` ``QoS.reject``, lines 503-508). A task that wants to release what
it holds before it goes (a lease, a claim) checks ``stopping_now()`` in its handler.

Why not Celery's own soft shutdown (``worker_soft_shutdown_timeout``, with ``REMAP_SIGTERM=
SIGQUIT`` so that SIGTERM starts it): ``WorkController.wait_for_soft_shutdown``
(``celery/worker/worker.py`` lines 412-435) sleeps the whole timeout whenever a task is running
when the signal comes, inside the signal handler of the main process: a worker whose task ends a
second later still waits the full window, and its event loop (which reads the pool's results and
acknowledges them) is blocked meanwhile. ``REMAP_SIGTERM`` also changes billiard's own terminate
signal for the pool children (``billiard/common.py`` lines 34-41).

``WORKER_SOFT_SHUTDOWN_SECONDS=0`` keeps Celery's warm shutdown unbounded, as before (the pod's
termination grace must then exceed the task time limit). A generic worker mechanism: it knows
nothing of the project's tasks.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from typing import Any

from billiard.common import terminate_handler_fired
from celery.signals import worker_shutting_down
from celery.worker import state

from django_eks_runtime.launch import WORKER_SOFT_SHUTDOWN_SECONDS

logger = logging.getLogger(__name__)

_timer: threading.Timer | None = None


def stopping_now() -> bool:
    """In a pool child: is this process unwinding because its worker's stop cancelled its task?

    True inside the ``except``/``finally`` of a task interrupted by the cold shutdown (billiard's
    terminate handler has run in this process); the task will not finish here, and its message
    goes back to the queue."""
    return bool(terminate_handler_fired())


def _cold_shutdown(seconds: int) -> None:
    # Tasks that ended within the window leave the warm shutdown closing the pool and the broker
    # connection (a few seconds): a cold shutdown then would cancel nothing and exit 1.
    if not state.active_requests:
        return
    logger.warning("worker still busy %d s after SIGTERM: its running tasks go back to the queue", seconds)
    os.kill(os.getpid(), signal.SIGQUIT)


def on_shutting_down(sender: Any = None, sig: str = "", how: str = "", **kwargs: Any) -> None:
    """``worker_shutting_down`` receiver (sent from the main process's signal handler,
    ``celery/apps/worker.py`` lines 301-311): on the first warm shutdown, start the timer."""
    global _timer
    seconds = WORKER_SOFT_SHUTDOWN_SECONDS.integer(os.environ)
    if how != "Warm" or seconds == 0 or _timer is not None:
        return
    logger.info("warm shutdown: running tasks may finish within %d s", seconds)
    _timer = threading.Timer(seconds, _cold_shutdown, (seconds,))
    _timer.daemon = True
    _timer.start()


def register() -> None:
    """Bound the warm shutdown of this process's workers (``worker.install`` calls this);
    the launcher has checked ``WORKER_SOFT_SHUTDOWN_SECONDS``."""
    worker_shutting_down.connect(on_shutting_down, weak=False)
