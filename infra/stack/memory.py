"""Memory the app's pods need for the largest image the service accepts.

Decoding an image costs memory in proportion to its pixels, whatever its size on disk: a
16-bit RGBA PNG of 40 M pixels is under 0.5 MB but decodes to 150 MiB in the web process
(which validates every upload by decoding it) and over 300 MiB in the worker (decode, then
resize and convert). So the pixel limit, the decodes a web pod runs at once and the pods'
memory limits are one decision: `memory_problems` refuses combinations that cannot fit.

The per-pixel costs and base sizes are measured, not guessed:
`tests/service/test_memory.py` decodes the largest accepted image in real gunicorn and
Celery processes, reads their peak RSS, and checks it stays within this model.
"""

from __future__ import annotations

import math

from stack.config import StackConfig

MIB = 1024 * 1024

WEB_BASE_MIB = 160
"""gunicorn's master and worker processes with Django loaded, request buffers of the threads
(uploads up to 2.5 MB are held in memory) and the heap the allocator keeps (measured ~110 MiB)."""
WEB_DECODE_BYTES_PER_PIXEL = 5.0
"""Validating an upload decodes it whole (RGBA, 4 bytes per pixel) plus decoder buffers
(measured 3.8 bytes per pixel for a 40 M pixel 16-bit RGBA PNG)."""
WORKER_PARENT_MIB = 96
"""The Celery parent process (consumer, timer, heartbeat): it never decodes."""
WORKER_CHILD_BASE_MIB = 96
"""A prefork pool child with Django and Pillow loaded."""
WORKER_DECODE_BYTES_PER_PIXEL = 9.5
"""Decode, in-place orientation, resize and convert (measured 8.6 bytes per pixel)."""


def decode_mib(pixels: int, bytes_per_pixel: float) -> int:
    return math.ceil(pixels * bytes_per_pixel / MIB)


def web_memory_needed_mib(config: StackConfig) -> int:
    return WEB_BASE_MIB * config.web.gunicorn_workers + config.jobs.decodes_per_web_pod * decode_mib(
        config.jobs.max_pixels, WEB_DECODE_BYTES_PER_PIXEL
    )


def worker_memory_needed_mib(config: StackConfig) -> int:
    child = WORKER_CHILD_BASE_MIB + decode_mib(config.jobs.max_pixels, WORKER_DECODE_BYTES_PER_PIXEL)
    return WORKER_PARENT_MIB + config.worker.concurrency * child


def decodes_per_web_process(config: StackConfig) -> int:
    return config.jobs.decodes_per_web_pod // config.web.gunicorn_workers


def memory_problems(config: StackConfig) -> list[tuple[str, str]]:
    """(key path, message) for each pod whose memory limit the largest image would exceed."""
    jobs = config.jobs
    problems: list[tuple[str, str]] = []
    if jobs.decodes_per_web_pod % config.web.gunicorn_workers:
        problems.append((
            "jobs.decodesPerWebPod",
            f"{jobs.decodes_per_web_pod} must be a multiple of web.gunicornWorkers "
            f"{config.web.gunicorn_workers} (each gunicorn process gets an equal share)",
        ))
    web_needed = web_memory_needed_mib(config)
    if web_needed > config.web.memory_mib:
        problems.append((
            "web.memoryMib",
            f"{config.web.memory_mib} MiB cannot hold {jobs.decodes_per_web_pod} decode(s) of "
            f"jobs.maxPixels {jobs.max_pixels} at once (jobs.decodesPerWebPod) plus "
            f"{config.web.gunicorn_workers} gunicorn process(es): needs {web_needed} MiB; raise "
            "web.memoryMib or lower jobs.maxPixels or jobs.decodesPerWebPod",
        ))
    worker_needed = worker_memory_needed_mib(config)
    if worker_needed > config.worker.memory_mib:
        problems.append((
            "worker.memoryMib",
            f"{config.worker.memory_mib} MiB cannot hold worker.concurrency {config.worker.concurrency} "
            f"job(s) of jobs.maxPixels {jobs.max_pixels}: needs {worker_needed} MiB; raise "
            "worker.memoryMib or lower jobs.maxPixels or worker.concurrency",
        ))
    return problems


def memory_settings(config: StackConfig) -> dict[str, str]:
    """The service's side of the same decision (ConfigMap environment)."""
    return {
        "JOBS_MAX_PIXELS": str(config.jobs.max_pixels),
        "JOBS_MAX_CONCURRENT_DECODES": str(decodes_per_web_process(config)),
    }
