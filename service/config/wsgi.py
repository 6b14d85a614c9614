import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

application = get_wsgi_application()


def _start_probe_server() -> None:
    """Serve the probes from every process that serves requests.

    gunicorn imports this module in each worker (no --preload): the probe thread starts
    there. So does granian: its main process never imports the app, each worker process
    loads it (``callback = callback_loader()`` in granian/server/mp.py, 2.8). uWSGI with --master and without --lazy-apps imports it once in the master and
    forks the workers from it: a thread started now would live in the master only, and
    its one listening socket would be inherited by every worker and the HTTP router. So
    under uWSGI the server starts in each worker after the fork (uwsgidecorators.postfork),
    as under gunicorn: each worker binds the port with SO_REUSEPORT, a probe reaches a
    process that runs the app's code, and a respawned worker binds it again.
    """
    from django.conf import settings

    if not settings.PROBE_BIND:
        return
    from config import probe_server

    host, _, port = settings.PROBE_BIND.rpartition(":")

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


_start_probe_server()
