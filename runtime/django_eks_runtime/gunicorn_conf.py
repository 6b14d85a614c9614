"""Gunicorn settings the launcher does not pass as flags, each from an environment variable.

The sizing (bind, workers, threads, keep-alive, timeouts) comes from the launcher's WEB_*
variables as flags (launch.py): one worker process per pod by default (scale with
replicas), request concurrency from threads (web requests are I/O bound), never derived from
cpu_count() (in a container it reports the host's CPUs, not the pod's CPU limit).
"""

import os
from typing import Any

from django_eks_runtime.launch import MULTIPROC_DIR

# gthread: the sync worker cannot keep connections alive, which an ALB needs.
worker_class = "gthread"
# The worker heartbeat file must live on tmpfs: the root filesystem is read-only
# in the cluster, and a disk-backed file can stall the heartbeat under I/O load.
worker_tmp_dir = os.environ.get("GUNICORN_WORKER_TMP_DIR", "/dev/shm")
# "-" logs each request to stdout; an empty value turns the access log off (None is
# gunicorn's "no access log"), which saves 0.3 to 0.7 ms of CPU per request.
accesslog = os.environ.get("GUNICORN_ACCESSLOG", "-") or None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOGLEVEL", "info")
# The client address as seen through the ALB.
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "*")
# gunicorn 25.1+ opens a control socket (gunicornc: worker counts, reload, shutdown) by
# default (gunicorn/config.py, ControlSocket and ControlSocketDisable, "versionadded:: 25.1.0";
# this image installs 27.0). Nothing in a pod uses it, and it is one more way to stop the server.
control_socket_disable = True


def child_exit(server: object, worker: Any) -> None:
    """A worker process exited: prometheus-client's ``mark_process_dead`` for its pid, as its
    multiprocess docs ask of gunicorn (prometheus/client_python@d0b497ffe069865537e55af52cb00c329d58a6f0:
    docs/content/multiprocess/_index.md lines 73-82). Only in multiprocess mode (the launcher
    sets ``PROMETHEUS_MULTIPROC_DIR``), and imported here, in the arbiter, only then."""
    if os.environ.get(MULTIPROC_DIR, "").strip():
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]
