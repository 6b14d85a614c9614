import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

application = get_wsgi_application()


def _start_probe_server() -> None:
    from django.conf import settings

    if settings.PROBE_BIND:
        from config import probe_server

        host, _, port = settings.PROBE_BIND.rpartition(":")
        probe_server.start(int(port), host or "0.0.0.0")


_start_probe_server()
