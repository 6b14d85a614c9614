"""The metrics an app on the platform serves at `/metrics`: what the cluster's alert rules,
its collector and `make measure` read.

This is the platform's side of the contract (docs/app-contract.md). The runtime package
implements it (runtime/django_eks_runtime/metrics.py); the program cannot import the runtime,
which needs the app's dependencies, so a test compares the runtime's metrics with this table
(tests/infra/platform/test_prometheus.py), and the measure test reads them off the real
service's `/metrics`. Names are as exposed: a histogram's series add `_bucket`, `_sum` and
`_count`.
"""

from __future__ import annotations

HTTP_REQUESTS = "django_http_requests_total"
HTTP_REQUEST_DURATION = "django_http_request_duration_seconds"
HTTP_REQUEST_CPU = "django_http_request_cpu_seconds"
PROCESS_CPU = "app_process_cpu_seconds_total"
TASK_QUEUE_WAIT = "celery_task_queue_wait_seconds"
TASK_RUNTIME = "celery_task_runtime_seconds"
TASK_CPU = "celery_task_cpu_seconds"
TASKS_TOTAL = "celery_tasks_total"
QUEUE_LENGTH = "celery_queue_length"
POD_INFO = "app_pod_info"

APP_METRICS: dict[str, str] = {
    HTTP_REQUESTS: "counter",
    HTTP_REQUEST_DURATION: "histogram",
    HTTP_REQUEST_CPU: "histogram",
    PROCESS_CPU: "counter",
    TASK_QUEUE_WAIT: "histogram",
    TASK_RUNTIME: "histogram",
    TASK_CPU: "histogram",
    TASKS_TOTAL: "counter",
    QUEUE_LENGTH: "gauge",
    POD_INFO: "gauge",
}
"""Each metric and its kind."""
