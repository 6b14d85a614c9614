"""The app's metrics: every metric the runtime records, its exposition, and the web middleware.

Why prometheus-client and not CloudWatch's embedded metric format (EMF): the cluster's metrics
are collected by the AWS-managed Prometheus collector (Amazon Managed Service for Prometheus),
which *pulls* ``/metrics`` from the pods it discovers by their annotations, so a process only
keeps counters in memory and never calls out; and the alerts want percentiles (queue wait p95),
which Prometheus computes from histogram buckets summed over every pod (``histogram_quantile``),
while EMF would put one log line per request or task into CloudWatch and bill each one.
prometheus-client's multiprocess mode lets one process answer for all the processes of a pod:
the web server's worker processes and Celery's prefork children.

Multiprocess mode, as prometheus-client documents it
(https://prometheus.github.io/client_python/multiprocess/, and
prometheus/client_python@d0b497ffe069865537e55af52cb00c329d58a6f0:docs/content/multiprocess/_index.md):

- ``PROMETHEUS_MULTIPROC_DIR`` must be set before the first metric is created, from outside
  Python, so that every child inherits it (lines 31-36; ``values.py`` ``get_value_class``,
  lines 128-136, decides once, at import). The launcher sets it (launch.py).
- The directory must be wiped between runs (lines 32-33): the launcher does.
- Exposition builds a fresh ``CollectorRegistry`` with a ``MultiProcessCollector`` per scrape
  (lines 46-71); each process writes ``<type>_<pid>.db`` files (``values.py`` lines 71-80).
- Custom collectors and ``Info`` do not work *in the child processes* (lines 19-21): the queue
  length and the pod info are collectors added to the exposition registry only, in the one
  process that answers the scrape.
- ``mark_process_dead(pid)`` is for the process manager when a child exits (lines 73-82,
  134-146): gunicorn's ``child_exit`` (gunicorn_conf.py) and Celery's
  ``worker_process_shutdown`` (worker.py) call it.

The names are a contract with the cluster's alert rules and ``make measure``: keep them.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from django_eks_runtime import launch
from django_eks_runtime.launch import MULTIPROC_DIR

if TYPE_CHECKING:
    from django.http import HttpRequest, HttpResponse

CONTENT_TYPE = CONTENT_TYPE_LATEST

BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
)
"""Seconds; every histogram's buckets: milliseconds for requests up to an hour for a task or its
wait in the queue."""

# --- web ------------------------------------------------------------------------------------
# prometheus-client appends ``_total`` to a counter's name (and strips it when given).
HTTP_REQUESTS = Counter(
    "django_http_requests_total", "Requests answered by the app (probes excluded)", ["method", "route", "status"])
HTTP_REQUEST_DURATION = Histogram(
    "django_http_request_duration_seconds", "Wall time of a request in the middleware", ["method", "route"],
    buckets=BUCKETS)
HTTP_REQUEST_CPU = Histogram(
    "django_http_request_cpu_seconds", "CPU time of the request's thread (time.thread_time)", ["method", "route"],
    buckets=BUCKETS)
UNMATCHED_ROUTE = "<unmatched>"
"""The route of a request no URL pattern matched (a 404 without a view, or an error before resolving)."""

# --- both -----------------------------------------------------------------------------------
PROCESS_CPU = Counter(
    "app_process_cpu_seconds_total", "CPU time of the app's processes (time.process_time), summed over the pod",
    ["component"])
POD_INFO = "app_pod_info"
COMPONENT, POD_NAME, NODE_NAME = launch.APP_COMPONENT.name, launch.POD_NAME.name, launch.NODE_NAME.name

# --- worker ---------------------------------------------------------------------------------
TASK_QUEUE_WAIT = Histogram(
    "celery_task_queue_wait_seconds", "From the task's publish (or its ETA, when later) to its start",
    ["queue", "task"], buckets=BUCKETS)
TASK_RUNTIME = Histogram("celery_task_runtime_seconds", "Wall time of a task", ["queue", "task"], buckets=BUCKETS)
TASK_CPU = Histogram("celery_task_cpu_seconds", "CPU time of the task's thread", ["queue", "task"], buckets=BUCKETS)
TASKS = Counter("celery_tasks_total", "Tasks finished, by outcome", ["queue", "task", "outcome"])
OUTCOMES = ("succeeded", "failed", "retried")
QUEUE_LENGTH = "celery_queue_length"


def component(default: str) -> str:
    """``APP_COMPONENT`` ("web", "worker-<key>", ...), else `default`."""
    return os.environ.get(COMPONENT, "").strip() or default


def multiprocess() -> bool:
    return bool(os.environ.get(MULTIPROC_DIR, "").strip())


class _ProcessCpu:
    """Adds this process's CPU since the last call to ``app_process_cpu_seconds_total``.

    A forked child (a Celery pool process) starts its own CPU clock at zero
    (CLOCK_PROCESS_CPUTIME_ID is per process): after a fork the baseline restarts at zero.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pid = os.getpid()
        self.last = 0.0

    def add(self, component: str) -> None:
        with self.lock:
            pid, now = os.getpid(), time.process_time()
            if pid != self.pid:
                self.pid, self.last = pid, 0.0
            delta, self.last = now - self.last, now
        if delta > 0:
            PROCESS_CPU.labels(component).inc(delta)


add_process_cpu = _ProcessCpu().add


class PodInfo:
    """``app_pod_info{component,pod,node} 1`` (POD_NAME and NODE_NAME: the downward API)."""

    def __init__(self, component: str) -> None:
        self.component = component

    def collect(self) -> Iterator[Metric]:
        info = GaugeMetricFamily(POD_INFO, "The pod and node of this component", labels=["component", "pod", "node"])
        info.add_metric([self.component, os.environ.get(POD_NAME, ""), os.environ.get(NODE_NAME, "")], 1)
        yield info


class _Registry:
    """The in-process registry, for a process that is not in multiprocess mode."""

    def collect(self) -> Iterable[Metric]:
        return REGISTRY.collect()


def exposition(component: str, collectors: Iterable[Any] = ()) -> bytes:
    """The text a scrape gets: every process of the pod (multiprocess mode), the pod info and
    `collectors` (read now); this process's CPU is brought up to date first."""
    add_process_cpu(component)
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess():
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry.register(_Registry())
    registry.register(PodInfo(component))
    for collector in collectors:
        registry.register(collector)
    return generate_latest(registry)


# --- the request id -------------------------------------------------------------------------

REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
"""The id of the request this thread serves (logs.py adds it to each log record)."""
REQUEST_ID_HEADER = "X-Request-Id"
REQUEST_ID_ATTRIBUTE = "request_id"
"""The request's attribute with its id, for the log lines Django writes after the middleware returned."""
_TRUSTED_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,200}")
_TRACE_ROOT = re.compile(r"(?:^|;)\s*Root=([A-Za-z0-9-]{1,100})")


def request_id(headers: Any) -> str:
    """X-Request-Id when it looks like an id, else the ALB's trace id's Root, else a new uuid4 hex.

    The ALB adds ``X-Amzn-Trace-Id: Root=1-<time>-<id>[;...]`` to each request it forwards
    (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-request-tracing.html).
    A client's own id is kept only if it is short and plain, so that it cannot forge log fields.
    """
    given = (headers.get(REQUEST_ID_HEADER) or "").strip()
    if _TRUSTED_ID.fullmatch(given):
        return str(given)
    root = _TRACE_ROOT.search(headers.get("X-Amzn-Trace-Id") or "")
    return root.group(1) if root else uuid.uuid4().hex


ACCESS_LOG = logging.getLogger("django_eks_runtime.access")
"""One line a request, with its id, route, status, wall time and CPU: the app's access log, in the
app's JSON lines (logs.py). The web servers' own access logs are plain text and know no request
id."""


class MetricsMiddleware:
    """Counts and times each request by its route, gives it a request id, and logs it (ACCESS_LOG).

    Put it right after ``ProbeMiddleware``: probes are answered there and never reach this one,
    so they are not requests of the app; every later middleware's answer (a 400 for a
    disallowed host, a 404) is counted. The id is the ``REQUEST_ID`` of the request's logs and
    the response's ``X-Request-Id``.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.component = component("web")

    def __call__(self, request: HttpRequest) -> HttpResponse:
        rid = request_id(request.headers)
        token = REQUEST_ID.set(rid)
        setattr(request, REQUEST_ID_ATTRIBUTE, rid)
        started, cpu_started = time.perf_counter(), time.thread_time()
        try:
            response = self.get_response(request)
            response[REQUEST_ID_HEADER] = REQUEST_ID.get()
        finally:
            REQUEST_ID.reset(token)
        cpu, duration = time.thread_time() - cpu_started, time.perf_counter() - started
        match = getattr(request, "resolver_match", None)
        route = match.route if match is not None and match.route else UNMATCHED_ROUTE
        method, status = request.method or "", response.status_code
        HTTP_REQUESTS.labels(method, route, str(status)).inc()
        HTTP_REQUEST_DURATION.labels(method, route).observe(duration)
        HTTP_REQUEST_CPU.labels(method, route).observe(cpu)
        add_process_cpu(self.component)
        ACCESS_LOG.info(
            "%s %s %d", method, request.path, status,
            extra={
                "request_id": rid, "method": method, "path": request.path, "route": route, "status": status,
                "duration_ms": round(duration * 1000, 3), "cpu_ms": round(cpu * 1000, 3),
            },
        )
        return response
