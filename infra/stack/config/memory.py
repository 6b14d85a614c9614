"""Memory the app's pods need for the largest upload and the largest image the service accepts.

Web: since uploads are validated from their headers and structure (`image_inspect`), the web
process never decodes pixels; what an upload costs it is proportional to its size on disk,
bounded by the service's upload limit (JOBS_MAX_UPLOAD_BYTES, 10 MiB). A request thread
holding a parsed upload while it waits for an upload slot costs about twice the file; an
upload in a slot cost about nine times more when it was read whole and written to PostgreSQL.
Uploads are now streamed to the S3 bucket, which costs less (see the figures below): the
in-slot cost stays as measured then, an upper bound. So the web pod needs its server's
processes, a waiting upload per request thread and `jobs.uploadsPerWebPod` uploads in slots.

Worker: decoding an image costs memory in proportion to its pixels, whatever its size on
disk: a 16-bit RGBA PNG of 40 M pixels is under 0.5 MB but needs over 300 MiB in the worker
(decode, then resize and convert). So the pixel limit, the worker's concurrency and its
memory limit are one decision.

`memory_problems` refuses combinations that cannot fit. The costs and base sizes are
measured, not guessed: `tests/service/test_memory.py` sends the largest accepted upload to
real gunicorn and uWSGI processes from every request thread, and the largest accepted image
through a real Celery worker, reads their peak RSS and checks it stays within this model.
Measured on this project's test machine (sum of each process's peak RSS, an upper bound of
the container's): gunicorn 86 MiB idle with one worker, 119 MiB with two; uWSGI 164 and 214
MiB (its master loads the app and runs the HTTP router); per upload of 9.8 MiB 98 MiB in a
slot, 20 MiB waiting, the same under both servers. With uploads streamed to a bucket (moto's S3
server, through boto3), the default web shape (1 x 8 threads, one slot, eight 9.8 MiB uploads
at once) peaked at 147 MiB under gunicorn and 235 MiB under uWSGI, against 376 and 440
modelled; the worker's parent 113 MiB (its bucket check loads boto3) and its pool child 438
MiB on a 40 M pixel image (102 and 424 with a local directory instead of the bucket).
"""

from __future__ import annotations

import math

from stack.config.model import StackConfig, WorkerConfig
from stack.config.names import DEFAULT_QUEUE
from stack.config.workers import worker_deployments

MIB = 1024 * 1024

UPLOAD_MAX_BYTES = 10 * MIB
"""The service's upload limit (JOBS_MAX_UPLOAD_BYTES, its default: the stack does not set it)."""
WEB_SERVER_MIB = {"gunicorn": 64, "uwsgi": 128, "granian": 64}
"""The server's own processes: gunicorn's arbiter (measured ~55 MiB); uWSGI's master, which
imports the app before it forks, and its HTTP router (measured ~115 MiB); granian's main
process, which never imports the app (its workers do; measured ~32 MiB, given gunicorn's budget)."""
WEB_PROCESS_MIB = 56
"""A worker process with Django loaded and the heap the allocator keeps (measured 33-50 MiB)."""
WEB_WAITING_UPLOAD_PER_BYTE = 2.2
"""A request thread holding a parsed upload while it waits for a slot (measured 2.0x)."""
WEB_UPLOAD_PER_BYTE = 8.0
"""An upload in a slot (inspected, read whole, written to the database), beyond its waiting
cost (measured 7.8x)."""
WORKER_PARENT_MIB = 128
"""The Celery parent process (consumer, timer, heartbeat, and the boto3 client of its start-up
check of the bucket): it never decodes (measured 113 MiB)."""
WORKER_CHILD_BASE_MIB = 112
"""A prefork pool child with Django, Pillow and boto3 (the storage's S3 client) loaded
(measured 108 to 120 MiB after a job)."""
WORKER_DECODE_BYTES_PER_PIXEL = 9.5
"""Decode, in-place orientation, resize and convert (measured 8.6 bytes per pixel)."""


def scaled_mib(count: int, per_unit: float) -> int:
    return math.ceil(count * per_unit / MIB)


def web_pod_memory_mib(*, server: str, processes: int, threads: int, uploads_per_pod: int) -> int:
    """What a web pod of this shape needs when every request thread holds an upload."""
    waiting = scaled_mib(UPLOAD_MAX_BYTES, WEB_WAITING_UPLOAD_PER_BYTE)
    in_slot = scaled_mib(UPLOAD_MAX_BYTES, WEB_UPLOAD_PER_BYTE)
    return (
        WEB_SERVER_MIB[server]
        + processes * (WEB_PROCESS_MIB + threads * waiting)
        + uploads_per_pod * in_slot
    )


def worker_pod_memory_mib(*, concurrency: int, max_pixels: int) -> int:
    """What a worker pod of `concurrency` children needs, each on an image of `max_pixels`."""
    child = WORKER_CHILD_BASE_MIB + scaled_mib(max_pixels, WORKER_DECODE_BYTES_PER_PIXEL)
    return WORKER_PARENT_MIB + concurrency * child


def web_memory_needed_mib(config: StackConfig) -> int:
    web = config.web
    return web_pod_memory_mib(
        server=web.server, processes=web.gunicorn_workers, threads=web.threads,
        uploads_per_pod=config.jobs.uploads_per_web_pod,
    )  # fmt: skip


def worker_memory_needed_mib(config: StackConfig, worker: WorkerConfig | None = None) -> int:
    """What a pod of `worker` (default: the single `worker`) needs for the largest image."""
    concurrency = (worker or config.worker).concurrency
    return worker_pod_memory_mib(concurrency=concurrency, max_pixels=config.jobs.max_pixels)


def uploads_per_web_process(config: StackConfig) -> int:
    return config.jobs.uploads_per_web_pod // config.web.gunicorn_workers


def memory_problems(config: StackConfig) -> list[tuple[str, str]]:
    """(key path, message) for each pod whose memory limit the largest upload or image would exceed."""
    jobs, web = config.jobs, config.web
    problems: list[tuple[str, str]] = []
    if jobs.uploads_per_web_pod % web.gunicorn_workers:
        problems.append((
            "jobs.uploadsPerWebPod",
            f"{jobs.uploads_per_web_pod} must be a multiple of web.gunicornWorkers {web.gunicorn_workers} "
            f"(the {web.server} processes of a web pod: each gets an equal share of the upload slots)",
        ))
    web_needed = web_memory_needed_mib(config)
    if web_needed > web.memory_mib:
        problems.append((
            "web.memoryMib",
            f"{web.memory_mib} MiB cannot hold {web.gunicorn_workers} {web.server} process(es) of "
            f"{web.threads} thread(s), each thread holding an upload of up to {UPLOAD_MAX_BYTES // MIB} MiB, "
            f"and {jobs.uploads_per_web_pod} upload(s) being stored at once (jobs.uploadsPerWebPod): "
            f"needs {web_needed} MiB; raise web.memoryMib or lower web.threads, web.gunicornWorkers "
            "or jobs.uploadsPerWebPod",
        ))
    # Images are decoded by the tasks of the service's own queue only: the Deployment that
    # consumes it is held to the pixel limit, the other queues' tasks are not images.
    for d in worker_deployments(config):
        if DEFAULT_QUEUE not in d.queues:
            continue
        worker, key = d.spec, d.key
        worker_needed = worker_memory_needed_mib(config, worker)
        if worker_needed > worker.memory_mib:
            problems.append((
                f"{key}.memoryMib",
                f"{worker.memory_mib} MiB cannot hold {key}.concurrency {worker.concurrency} "
                f"job(s) of jobs.maxPixels {jobs.max_pixels}: needs {worker_needed} MiB; raise "
                f"{key}.memoryMib or lower jobs.maxPixels or {key}.concurrency",
            ))
    return problems


def memory_settings(config: StackConfig) -> dict[str, str]:
    """The service's side of the same decision (ConfigMap environment)."""
    return {
        "JOBS_MAX_PIXELS": str(config.jobs.max_pixels),
        "JOBS_MAX_CONCURRENT_UPLOADS": str(uploads_per_web_process(config)),
    }
