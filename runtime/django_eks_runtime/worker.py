"""What ``install(app)`` adds to an app's Celery workers: the liveness heartbeat (a step of the
Celery consumer), the bounded stop (worker_shutdown.py), the task metrics with their ``/metrics``
server, and the JSON logs (logs.py).

The liveness probe that reads the file is ``python -m django_eks_runtime.heartbeat``
(heartbeat.py). The file is the ``CELERY_HEARTBEAT_FILE`` setting (default
/tmp/celery-worker-heartbeat), touched every ``CELERY_HEARTBEAT_INTERVAL`` seconds (default 10)
while the worker makes progress.

Metrics (metrics.py): the pool children record each task's queue wait, runtime, CPU and outcome
in the multiprocess directory; the worker's main process serves them all on ``METRICS_BIND``
(``MetricsServer``, a step of the worker's own blueprint, which only ``celery worker``'s main
process runs: beat and the web processes import the app and call ``install`` too, and start no
server), with the length of each of its queues read at scrape time. The publish time travels in
the message header ``enqueued_at``, set by a ``before_task_publish`` receiver in every process
that sends tasks (the web, beat, the worker itself).
"""

import datetime
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from celery import Celery, bootsteps, signals
from celery.worker import state
from celery.worker.request import Request
from prometheus_client.core import Metric

from django_eks_runtime import heartbeat, launch, logs, metrics, worker_shutdown

logger = logging.getLogger(__name__)

ENQUEUED_AT = "enqueued_at"
"""The message header with the publish time (epoch seconds)."""


def install(app: Celery) -> None:
    """Add the liveness heartbeat, the bounded stop, the task metrics and the JSON logs to `app`."""
    app.steps["consumer"].add(Heartbeat)
    app.steps["worker"].add(MetricsServer)
    worker_shutdown.register()
    # Receivers of Celery's global signals; dispatch_uid: connected once however often install runs.
    signals.before_task_publish.connect(stamp_enqueued_at, weak=False, dispatch_uid="django_eks_runtime.enqueued_at")
    signals.task_prerun.connect(task_started, weak=False, dispatch_uid="django_eks_runtime.task_prerun")
    signals.task_postrun.connect(task_finished, weak=False, dispatch_uid="django_eks_runtime.task_postrun")
    signals.task_received.connect(task_received, weak=False, dispatch_uid="django_eks_runtime.task_received")
    signals.task_failure.connect(task_failed, weak=False, dispatch_uid="django_eks_runtime.task_failure")
    signals.task_retry.connect(task_retried, weak=False, dispatch_uid="django_eks_runtime.task_retry")
    signals.worker_process_shutdown.connect(
        pool_process_exited, weak=False, dispatch_uid="django_eks_runtime.worker_process_shutdown")
    signals.setup_logging.connect(
        logs.configure_celery_logging, weak=False, dispatch_uid="django_eks_runtime.setup_logging")


# --- task metrics ---------------------------------------------------------------------------


def stamp_enqueued_at(headers: dict[str, Any] | None = None, **kwargs: Any) -> None:
    """``before_task_publish``: the publish time into the message's headers (task protocol 2).

    Celery 5.6.3 hands a message's headers to the task as its request's attributes: the
    worker's Request copies ``message.headers`` (celery/worker/request.py lines 98-99), passes
    them to the pool (line 360), and the task's ``request`` is ``Context(request)`` of them
    (celery/app/trace.py line 497): ``task.request.enqueued_at``.
    """
    if headers is not None:
        headers[ENQUEUED_AT] = time.time()


_started: dict[str, tuple[float, float]] = {}
"""Per task id, in the pool process running it: (perf_counter, thread_time) at its start."""


def queue_of(request: Any) -> str:
    """The queue a task came from: its delivery's routing key (the queue's name, for Celery's
    queues on the default direct exchange)."""
    info = getattr(request, "delivery_info", None) or {}
    return str(info.get("routing_key") or "")


def queue_wait(request: Any, now: float) -> float | None:
    """Seconds from publish, or from the task's ETA when later (a countdown is no wait), to `now`."""
    stamped = getattr(request, ENQUEUED_AT, None)
    if stamped is None:  # published without the header (a producer without the runtime)
        return None
    try:
        enqueued = float(stamped)
    except (TypeError, ValueError):
        return None
    eta = getattr(request, "eta", None)
    if eta:
        try:
            enqueued = max(enqueued, datetime.datetime.fromisoformat(str(eta)).timestamp())
        except ValueError:
            pass
    return max(0.0, now - enqueued)


def task_started(task_id: str = "", task: Any = None, **kwargs: Any) -> None:
    if task is None:
        return
    wait = queue_wait(task.request, time.time())
    if wait is not None:
        metrics.TASK_QUEUE_WAIT.labels(queue_of(task.request), task.name).observe(wait)
    _started[task_id] = (time.perf_counter(), time.thread_time())


def task_finished(task_id: str = "", task: Any = None, state: str | None = None, **kwargs: Any) -> None:
    started = _started.pop(task_id, None)
    if task is None:
        return
    queue = queue_of(task.request)
    if started is not None:
        metrics.TASK_RUNTIME.labels(queue, task.name).observe(time.perf_counter() - started[0])
        metrics.TASK_CPU.labels(queue, task.name).observe(time.thread_time() - started[1])
    if state == "SUCCESS":
        metrics.TASKS.labels(queue, task.name, "succeeded").inc()
    metrics.add_process_cpu(metrics.component("worker"))


RECEIVED_REMEMBERED = 10_000
_received: OrderedDict[str, str] = OrderedDict()
"""In the main process: the queue of each of the last tasks it received, by id (no signal tells
the main process that a task finished well, so the oldest are dropped: far more than a worker
holds at once)."""


def task_received(request: Any = None, **kwargs: Any) -> None:
    """``task_received`` (the main process): remember the queue, for a failure only it sees."""
    if request is not None:
        _received[request.id] = queue_of(request)
        while len(_received) > RECEIVED_REMEMBERED:
            _received.popitem(last=False)


def task_failed(sender: Any = None, task_id: str = "", **kwargs: Any) -> None:
    """``task_failure``: sent in the pool process (the task raised), or in the main process when
    the pool process running it died (celery 5.6.3, celery/worker/request.py lines 640-649,
    after ``task_ready`` at line 578 has let the request go: its queue is the one remembered
    at its receipt)."""
    if sender is None:
        return
    request = sender.request
    if getattr(request, "id", None) == task_id:
        queue = queue_of(request)
    else:
        queue = _received.pop(task_id, "")
    metrics.TASKS.labels(queue, sender.name, "failed").inc()


def task_retried(sender: Any = None, request: Any = None, **kwargs: Any) -> None:
    if sender is not None:
        metrics.TASKS.labels(queue_of(request), sender.name, "retried").inc()


def pool_process_exited(pid: int | None = None, **kwargs: Any) -> None:
    """``worker_process_shutdown``: prometheus-client's ``mark_process_dead`` for a pool process
    (docs/content/multiprocess/_index.md lines 134-146). It removes only the files of ``live*``
    gauges, which the runtime has none of today; counters and histograms of a dead process stay
    counted, as they must."""
    if pid and metrics.multiprocess():
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


class QueueLength:
    """``celery_queue_length{queue}``: the messages waiting in each of the worker's queues, read
    from the broker at each scrape.

    Through kombu's ``queue_declare(passive=True)``, whose ``message_count`` is the Redis
    transport's ``_size``: the sum of LLEN over the queue's priority lists, the queue's own name
    being the list of priority 0 and ``<queue>\x06\x16<n>`` the others (kombu 5.7.0,
    kombu/transport/redis.py lines 1656-1669; celery's default ``priority_steps`` are
    [0, 3, 6, 9], line 212). Without priorities it is LLEN of the queue's name, what KEDA reads.
    A queue with no message has no list in Redis, and a passive declare of it fails
    (kombu/transport/virtual/base.py lines 537-548, redis.py ``_has_queue``): 0.
    """

    def __init__(self, app: Celery, queues: list[str]) -> None:
        self.app, self.queues = app, queues

    def collect(self) -> Iterator[Metric]:
        from kombu.exceptions import ChannelError
        from prometheus_client.core import GaugeMetricFamily

        family = GaugeMetricFamily(metrics.QUEUE_LENGTH, "Messages waiting in the queue", labels=["queue"])
        try:
            with self.app.connection_for_read() as connection:
                connection.ensure_connection(max_retries=1)
                channel = connection.default_channel
                for queue in self.queues:
                    try:
                        count = channel.queue_declare(queue=queue, passive=True).message_count
                    except ChannelError:
                        count = 0
                    family.add_metric([queue], count)
        except Exception:  # noqa: BLE001 - the broker is down: the other metrics still answer
            logger.warning("metrics: queue lengths unavailable", exc_info=True)
            return
        yield family


class MetricsServer(bootsteps.StartStopStep):
    """``/metrics`` of the whole worker (main process and pool processes) on ``METRICS_BIND``.

    A step of the worker's blueprint: only ``celery worker``'s main process runs it, never a
    pool process, beat or a web process. Unset ``METRICS_BIND``: no server.
    """

    def __init__(self, w: Any, **kwargs: Any) -> None:
        self.server: ThreadingHTTPServer | None = None
        super().__init__(w, **kwargs)

    def start(self, w: Any) -> None:
        bind = launch.bind_address(launch.METRICS_BIND, os.environ)
        if bind is None:
            return
        # The queues it consumes at the start: a consumer cancelled later still has a queue.
        queues = sorted(w.app.amqp.queues.consume_from)
        self.server = serve_metrics(bind, metrics.component("worker"), QueueLength(w.app, queues))
        logger.info("metrics on %s:%d/metrics (queues %s)", *bind, ", ".join(queues))

    def stop(self, w: Any) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


def serve_metrics(bind: tuple[str, int], component: str, *collectors: object) -> ThreadingHTTPServer:
    from django_eks_runtime.probe_server import METRICS_PATH, serve_metrics as answer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if self.path.split("?", 1)[0] != METRICS_PATH:
                self.send_error(404, f"this port serves only {METRICS_PATH}")
                return
            answer(self, component, collectors)

        do_HEAD = do_GET  # noqa: N815

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass  # a scrape every few seconds would drown the log

    server = ThreadingHTTPServer(bind, Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="metrics-server", daemon=True).start()
    return server


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
