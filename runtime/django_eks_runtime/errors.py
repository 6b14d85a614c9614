"""JSON answers for the errors Django raises itself, before or around any view of the app.

Without them a client of a JSON API gets Django's HTML pages. In the app's root URLconf:

    handler400 = "django_eks_runtime.errors.bad_request"
    handler403 = "django_eks_runtime.errors.forbidden"
    handler404 = "django_eks_runtime.errors.not_found"
    handler500 = "django_eks_runtime.errors.server_error"

and in its settings ``CSRF_FAILURE_VIEW = "django_eks_runtime.errors.csrf_failure"``. Each
answers ``{"error": <code>, "detail": <text>}`` (``error_response``), the app's own views can too.
"""

from typing import Any

from django.conf import settings
from django.core.exceptions import DisallowedHost, TooManyFieldsSent, TooManyFilesSent
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError


def error_response(http_status: int, code: str, detail: str, **extra: Any) -> JsonResponse:
    return JsonResponse({"error": code, "detail": detail, **extra}, status=http_status)


def bad_requests() -> list[tuple[type[Exception], str, str]]:
    """Django raises these while parsing a request, before any view runs (handler400): the
    exception's type, the answer's code and its text."""
    return [
        (TooManyFilesSent, "too_many_files", f"more than {settings.DATA_UPLOAD_MAX_NUMBER_FILES} files in one request"),
        (TooManyFieldsSent, "too_many_fields", f"more than {settings.DATA_UPLOAD_MAX_NUMBER_FIELDS} form fields"),
        (MultiPartParserError, "bad_request", "the multipart body could not be parsed"),
        (DisallowedHost, "disallowed_host", "the Host header names no host this service answers for"),
    ]


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    # Fixed texts: Django's messages can quote what the client sent (a Host header, a field name).
    for kind, code, detail in bad_requests():
        if isinstance(exception, kind):
            return error_response(400, code, detail)
    return error_response(400, "bad_request", "the request is malformed")


def forbidden(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_response(403, "forbidden", "this request is not allowed")


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    return error_response(403, "forbidden", "this request is not allowed")


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_response(404, "not_found", f"no route for {request.path}")


def server_error(request: HttpRequest) -> HttpResponse:
    return error_response(500, "server_error", "internal server error")
