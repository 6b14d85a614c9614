"""The names the app's Kubernetes objects share with the platform (IAM pod access, add-on roles)."""

NAMESPACE = "app"
"""The namespace every app object lives in."""

WEB = "web"
WORKER = "worker"
MIGRATE = "migrate"
BEAT = "beat"
CRON = "cron"

DEFAULT_QUEUE = "jobs"
"""The demo's one Celery queue: the web sends jobs to it, and the single `worker` consumes it."""
APP_DEFAULT_QUEUE = "celery"
"""An app's single `worker` consumes Celery's default queue, where `delay()` sends a task no
route names (task_default_queue, celery 5 celery/app/defaults.py:275)."""

PROBE_PORT = 8001
"""The web pods' probe server (PROBE_BIND): /healthz and /readyz from a thread outside the server's
request pool, and /metrics, the web pod's Prometheus exposition."""
WORKER_METRICS_PORT = 9100
"""The worker pods' metrics server (METRICS_BIND, served by the Celery main process)."""
METRICS_PATH = "/metrics"
METRICS_PORT_NAME = "metrics"
"""The container port the collector scrapes: the one named so, in the pods it keeps."""
METRICS_PORTS = (PROBE_PORT, WORKER_METRICS_PORT)
"""Every port the collector scrapes: what the network lets it reach, and nothing else."""
METRICS_DIR = "/var/run/app-metrics"
"""PROMETHEUS_MULTIPROC_DIR: the processes of a pod write their samples there (an emptyDir: the root
filesystem is read-only)."""

# The environment of the app's metrics the pod spec gives (stack.workloads.pods); an app's `env`
# may not set these (stack.config.rules).
POD_NAME_ENV = "POD_NAME"
NODE_NAME_ENV = "NODE_NAME"
APP_COMPONENT_ENV = "APP_COMPONENT"
"""The component a pod's metrics carry (`web`, `worker`, `worker-<key>`, `beat`)."""
MULTIPROC_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
"""Where the processes of a pod share their samples (prometheus-client multiprocess mode)."""
METRICS_BIND_ENV = "METRICS_BIND"
"""host:port of a worker pod's metrics server."""
METRICS_ENV = (POD_NAME_ENV, NODE_NAME_ENV, APP_COMPONENT_ENV, MULTIPROC_DIR_ENV, METRICS_BIND_ENV)
