"""JSON API for compression jobs. Views parse and answer; jobs.services does the work."""

import logging
import time
from typing import Any

from django.conf import settings
from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django_eks_runtime.errors import error_response, not_found

from jobs import files, imaging, services
from jobs.files import FileStoreUnavailable
from jobs.models import Job, JobResult

logger = logging.getLogger(__name__)

IO_MAX_MS = 5000
# Room for the multipart boundaries and headers around the file itself.
MULTIPART_OVERHEAD_BYTES = 64 * 1024


def method_not_allowed(request: HttpRequest, allowed: list[str]) -> JsonResponse:
    response = error_response(
        405, "method_not_allowed", f"{request.method} is not allowed here; use {', '.join(allowed)}"
    )
    response["Allow"] = ", ".join(allowed)
    return response


def job_not_found(job_id: object) -> JsonResponse:
    return error_response(404, "not_found", f"no job with id {job_id}")


def job_gone(job_id: object) -> JsonResponse:
    days = settings.JOBS_RETENTION_DAYS
    return error_response(
        410, "expired", f"job {job_id} expired: jobs and their files are kept {days} days after creation",
        retention_days=days,
    )


def job_lookup(job_id: str) -> Job | JsonResponse:
    """The job, or the JSON answer for an id that has none (404) or whose job expired (410)."""
    try:
        return services.job_get(job_id=job_id)
    except services.JobNotFound:
        return job_not_found(job_id)
    except services.JobExpired:
        return job_gone(job_id)


def job_as_json(job: Job) -> dict[str, Any]:
    result: JobResult | None = getattr(job, "result", None) if job.status == Job.Status.DONE else None
    processing_ms = None
    if job.started_at and job.finished_at:
        processing_ms = round((job.finished_at - job.started_at).total_seconds() * 1000)
    return {
        "id": str(job.id),
        "status": job.status,
        "attempts": job.attempts,
        "error": job.error or None,
        "created_at": job.created_at.isoformat(),
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "processing_ms": processing_ms,
        "input": {
            "bytes": job.input_bytes,
            "content_type": job.input_content_type,
            "width": job.input_width,
            "height": job.input_height,
        },
        "output": None
        if result is None
        else {
            "bytes": result.bytes,
            "content_type": result.content_type,
            "width": result.width,
            "height": result.height,
            "url": f"/api/jobs/{job.id}/result",
        },
    }


# No cookies or sessions: this is a token-less JSON API, so CSRF does not apply. Every view
# is exempt, so that a PUT or DELETE gets the documented 405 rather than a CSRF 403 page.
@csrf_exempt
def jobs_collection(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return method_not_allowed(request, ["POST"])
    max_bytes = settings.JOBS_MAX_UPLOAD_BYTES
    too_large = error_response(
        413, "too_large", f"the upload exceeds the limit of {max_bytes} bytes", max_bytes=max_bytes
    )
    # Refuse before reading the body when the client announces an oversized upload.
    try:
        content_length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        content_length = 0
    if content_length > max_bytes + MULTIPART_OVERHEAD_BYTES:
        return too_large
    if not request.content_type.startswith("multipart/form-data"):
        return error_response(
            415, "unsupported_media_type", "send multipart/form-data with the image in the field 'image'"
        )
    upload = request.FILES.get("image")
    if upload is None:
        return error_response(400, "missing_field", "multipart field 'image' is required")
    if upload.size is not None and upload.size > max_bytes:
        return too_large
    if not upload.size:
        return error_response(400, "not_an_image", "the file 'image' is empty")
    try:
        job = services.job_create(file=upload)
    except imaging.InvalidImage as exc:
        return error_response(400, exc.code, exc.detail)
    except services.UploadsBusy as exc:
        response = error_response(503, "busy", str(exc))
        response["Retry-After"] = "5"
        return response
    except FileStoreUnavailable:
        logger.exception("upload not stored")
        response = error_response(
            503, "storage_unavailable", "the file storage is unavailable; nothing was stored, retry later"
        )
        response["Retry-After"] = "5"
        return response
    except services.JobQueueUnavailable:
        response = error_response(
            503, "queue_unavailable", "the job queue is unavailable; nothing was stored, retry later"
        )
        response["Retry-After"] = "5"
        return response
    response = JsonResponse({"id": str(job.id), "status": job.status}, status=201)
    response["Location"] = f"/api/jobs/{job.id}"
    return response


@csrf_exempt
def job_detail(request: HttpRequest, job_id: str) -> HttpResponse:
    if request.method not in {"GET", "HEAD"}:
        return method_not_allowed(request, ["GET"])
    job = job_lookup(job_id)
    if isinstance(job, HttpResponse):
        return job
    return JsonResponse(job_as_json(job))


@csrf_exempt
def job_result(request: HttpRequest, job_id: str) -> HttpResponse:
    """The compressed image: a redirect to a short-lived presigned URL of the bucket, or, from
    a local directory, the bytes themselves."""
    if request.method not in {"GET", "HEAD"}:
        return method_not_allowed(request, ["GET"])
    job = job_lookup(job_id)
    if isinstance(job, HttpResponse):
        return job
    if job.status == Job.Status.FAILED:
        # Final: no result will ever come, unlike a job still queued or running.
        return error_response(
            409, "failed", f"job {job.id} failed and has no result: {job.error}", status=job.status,
            job_error=job.error,
        )
    if job.status != Job.Status.DONE:
        return error_response(409, "not_ready", f"job {job.id} is {job.status}, not done", status=job.status)
    result = JobResult.objects.get(job=job)
    filename = f"{job.id}.webp"
    url = files.file_url(key=result.key, filename=filename, content_type=result.content_type)
    if url is not None:
        response: HttpResponse = HttpResponseRedirect(url)
        # The URL stops working after JOBS_RESULT_URL_EXPIRY_SECONDS: nobody may keep it.
        response["Cache-Control"] = "no-store"
        return response
    try:
        stored = files.file_open(key=result.key)
    except FileNotFoundError:
        return error_response(404, "not_found", f"the result of job {job.id} is missing from the storage")
    return FileResponse(stored, content_type=result.content_type, filename=filename)


@csrf_exempt
def io_wait(request: HttpRequest) -> HttpResponse:
    """Sleep ``ms`` milliseconds: a stand-in for a slow upstream call, for load tests only.

    Off unless ``API_IO_ENABLED``: anyone could otherwise hold request threads for seconds each.
    """
    if not settings.API_IO_ENABLED:
        return not_found(request)
    if request.method not in {"GET", "HEAD"}:
        return method_not_allowed(request, ["GET"])
    raw = request.GET.get("ms", "")
    try:
        ms = int(raw)
    except ValueError:
        return error_response(400, "bad_ms", f"ms must be an integer between 0 and {IO_MAX_MS}, got {raw!r}")
    if not 0 <= ms <= IO_MAX_MS:
        return error_response(400, "bad_ms", f"ms must be between 0 and {IO_MAX_MS}, got {ms}")
    time.sleep(ms / 1000)
    return JsonResponse({"slept_ms": ms})
