import os

from django_eks_runtime.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "metricsite.settings")
application = get_wsgi_application()
