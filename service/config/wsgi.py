import os

from django_eks_runtime.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

# With the probe server in each process that serves requests when PROBE_BIND is set
# (django_eks_runtime/wsgi.py says how, per server).
application = get_wsgi_application()
