import json
import logging
import os
import time

from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from metricsite.celery import app
from metricsite.work import burn as burn_rounds

logger = logging.getLogger("metricsite.views")


def hello(request: HttpRequest) -> JsonResponse:
    logger.warning("hello from %d", os.getpid())
    return JsonResponse({"pid": os.getpid()})


def item(request: HttpRequest, item_id: int) -> JsonResponse:
    if item_id >= 100:
        return JsonResponse({"error": "not_found"}, status=404)
    return JsonResponse({"id": item_id})


def nap(request: HttpRequest) -> JsonResponse:
    time.sleep(float(request.GET["seconds"]))
    return JsonResponse({})


def burn(request: HttpRequest) -> JsonResponse:
    burn_rounds(int(request.GET["rounds"]))
    return JsonResponse({})


@csrf_exempt
def enqueue(request: HttpRequest, task: str) -> JsonResponse:
    """POST {"args": [...], "count": n, "countdown": s}: n messages of `task`, their ids answered."""
    body = json.loads(request.body)
    ids = [app.send_task(task, args=body.get("args", []), countdown=body.get("countdown")).id
           for _ in range(int(body.get("count", 1)))]
    return JsonResponse({"ids": ids}, status=202)


urlpatterns = [
    path("hello", hello),
    path("items/<int:item_id>", item),
    path("nap", nap),
    path("burn", burn),
    path("tasks/<str:task>", enqueue),
]
