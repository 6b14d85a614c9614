"""What a Django + Celery app needs to run on the platform (docs/app-contract.md).

- ``python -m django_eks_runtime <web|worker|beat|migrate>``: the launcher (launch.py).
- ``django_eks_runtime.wsgi.get_wsgi_application()``: Django's WSGI callable, with the probe
  server started in each process that serves requests when ``PROBE_BIND`` is set.
- ``django_eks_runtime.probes.ProbeMiddleware``: ``/healthz`` and ``/readyz`` on the app's port.
- ``django_eks_runtime.worker.install(app)``: the worker's liveness heartbeat, checked by
  ``python -m django_eks_runtime.heartbeat``.
- ``django_eks_runtime.errors``: JSON answers for the errors Django raises before a view runs.
- ``django_eks_runtime.metrics.MetricsMiddleware``: requests counted and timed by route, each
  with its request id; ``/metrics`` on the probe server, and on ``METRICS_BIND`` for the worker
  (``worker.install``). Every metric's name is in metrics.py.
- ``django_eks_runtime.logs.LOGGING``: JSON log lines with the request's or the task's id.

Importing this package imports neither Django nor Celery.
"""

__version__ = "0.1.0"
