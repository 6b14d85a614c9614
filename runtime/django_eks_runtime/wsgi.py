"""The app's WSGI callable with the probe server beside it: in the app's wsgi.py,

    from django_eks_runtime.wsgi import get_wsgi_application
    application = get_wsgi_application()
"""

import os
from collections.abc import Callable
from typing import Any

from django.core.wsgi import get_wsgi_application as django_wsgi_application

PROBE_BIND = "PROBE_BIND"
"""host:port of the probe server (probe_server.py); unset or empty: probes only on the app's port."""


def get_wsgi_application() -> Callable[..., Any]:
    """Django's WSGI handler, with the probe server started in this process when ``PROBE_BIND`` is set."""
    application: Callable[..., Any] = django_wsgi_application()
    start_probe_server(os.environ.get(PROBE_BIND, "").strip())
    return application


def start_probe_server(bind: str) -> None:
    """Serve the probes from every process that serves requests.

    gunicorn imports the WSGI module in each worker (no --preload): the probe thread starts
    there. So does granian: its main process never imports the app, each worker process
    loads it (``callback = callback_loader()`` in granian/server/mp.py, 2.8). uWSGI with --master and without --lazy-apps imports it once in the master and
    forks the workers from it: a thread started now would live in the master only, and
    its one listening socket would be inherited by every worker and the HTTP router. So
    under uWSGI the server starts in each worker after the fork (uwsgidecorators.postfork),
    as under gunicorn: each worker binds the port with SO_REUSEPORT, a probe reaches a
    process that runs the app's code, and a respawned worker binds it again.
    """
    if not bind:
        return
    from django_eks_runtime import probe_server

    host, _, port = bind.rpartition(":")
    if not port.isdigit():
        raise ValueError(f"{PROBE_BIND}={bind!r}: expected host:port")

    def start() -> None:
        probe_server.start(int(port), host or "0.0.0.0")

    try:
        import uwsgi  # importable only inside a uWSGI process
    except ImportError:
        start()
        return
    if uwsgi.worker_id() == 0:  # the master, before it forks the workers
        from uwsgidecorators import postfork

        postfork(start)
    else:  # --lazy-apps: already in a worker
        start()
