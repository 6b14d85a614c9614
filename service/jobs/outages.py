"""A PostgreSQL outage answers 503 with Retry-After, like the Redis and storage outages.

Django turns an exception a view raises into the 500 of ``handler500``; the exceptions of an
unreachable or restarting database (psycopg's, wrapped by Django as ``OperationalError``, or
``InterfaceError`` for a connection closed under it) are not the request's fault and pass: the
client is told to retry. Other database errors (a constraint, a bad query) stay 500s.
"""

import logging
from collections.abc import Callable

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse

from django_eks_runtime.errors import error_response

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5


def database_unavailable() -> HttpResponse:
    response = error_response(
        503, "database_unavailable", "the database is unavailable; nothing was stored, retry later"
    )
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


class DatabaseOutageMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, (OperationalError, InterfaceError)):
            logger.warning("%s %s: database unavailable: %s", request.method, request.path, exception)
            return database_unavailable()
        return None
