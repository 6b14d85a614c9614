# The Celery app is loaded with Django, so that @shared_task sends through it from the web too.
from notesite.celery import app as celery_app

__all__ = ["celery_app"]
