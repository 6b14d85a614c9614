"""The WSGI callable (APP_WSGI=notesite.wsgi:application), with the probe server on PROBE_BIND."""

import os

from django_eks_runtime.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "notesite.settings")

application = get_wsgi_application()
