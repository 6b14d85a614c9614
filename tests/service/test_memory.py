"""The largest accepted upload and image fit the pods' memory limits, measured on real processes.

The stack config derives the memory limits from one model (infra/stack/config/memory.py): here real
uWSGI and gunicorn processes take the largest accepted upload on every request thread at
once, with the upload slots the config sets, and a real Celery worker compresses the largest
image it lets through; their peak RSS is read from /proc. A peak above the configured limit
is what the kernel would OOM-kill.
"""

import io
import os
import struct
import threading
import zlib

import pytest
import requests
from memory_limit import children, status_mib
from PIL import Image
from service_processes import wait_for

from config.launch import SERVERS
from jobs.models import Job
from stack.config import memory
from stack.config.loader import config_from_stack_file
from stack.config.model import StackConfig

IMAGE_ENV = {"MALLOC_MMAP_THRESHOLD_": "1048576"}
"""As service/Dockerfile sets it (test_dockerfile checks the two agree)."""
FAST = {"CELERY_VISIBILITY_TIMEOUT": "600", "CELERY_TASK_TIME_LIMIT": "120"}


def png_16bit_rgba(width: int, height: int) -> bytes:
    """A 16-bit RGBA PNG (8 bytes per pixel once inflated) that is tiny on disk."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    compressor = zlib.compressobj(9)
    row = b"\x00" + b"\x12\x34\x56\x78\x9a\xbc\xff\xff" * width
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 16, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def largest_accepted(max_pixels: int) -> tuple[int, int, bytes]:
    width = 8000
    height = max_pixels // width
    return width, height, png_16bit_rgba(width, height)


def pod_peak_mib(main_pid: int) -> float:
    """An upper bound of the container's peak: each process's own peak RSS, summed."""
    return sum(status_mib(pid, "VmHWM") for pid in [main_pid, *children(main_pid)])


@pytest.fixture(params=["prod", "dev"])
def stack_config(request) -> StackConfig:
    """A repository stack file's config, as the program validates it."""
    return config_from_stack_file(request.param)


def largest_upload(max_bytes: int) -> bytes:
    """An incompressible PNG just under the upload limit: the most an upload costs the web."""
    side = int((max_bytes / 3) ** 0.5) - 20
    image = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    out = io.BytesIO()
    image.save(out, "PNG", compress_level=0)
    return out.getvalue()


@pytest.mark.parametrize("server", SERVERS)
def test_largest_uploads_fit_the_web_pod_from_every_request_thread(processes, stack_config, server, s3_server,
                                                                   s3_bucket):
    config = stack_config.model_copy(update={"web": stack_config.web.model_copy(update={"server": server})})
    # Stored in a bucket, as in the cluster: boto3 and its clients are part of the pod's memory.
    env = {**memory.memory_settings(config), **IMAGE_ENV, **s3_server.env(s3_bucket, "web")}
    web, url = processes.web(server, env=env, threads=config.web.threads, processes=config.web.gunicorn_workers)
    image = largest_upload(memory.UPLOAD_MAX_BYTES)
    assert memory.UPLOAD_MAX_BYTES - 512 * 1024 < len(image) <= memory.UPLOAD_MAX_BYTES
    codes: list[int] = []

    def upload() -> None:
        response = requests.post(f"{url}/api/jobs", files={"image": ("big.png", image, "image/png")}, timeout=120)
        codes.append(response.status_code)

    # Every request thread of every process holds the largest upload at once.
    clients = [threading.Thread(target=upload) for _ in range(config.web.threads * config.web.gunicorn_workers)]
    for client in clients:
        client.start()
    for client in clients:
        client.join(timeout=180)
    peak = pod_peak_mib(web.pid)
    print(f"{server} web pod ({config.web.gunicorn_workers} x {config.web.threads} threads, "
          f"{len(clients)} concurrent uploads of {len(image) / memory.MIB:.1f} MiB, "
          f"{config.jobs.uploads_per_web_pod} stored at once): peak {peak:.0f} MiB of {config.web.memory_mib} MiB "
          f"(model {memory.web_memory_needed_mib(config)} MiB); answers {sorted(codes)}")
    assert set(codes) <= {201, 503} and 201 in codes, codes
    assert peak <= memory.web_memory_needed_mib(config) <= config.web.memory_mib


def test_largest_accepted_image_fits_the_worker_pod(processes, stack_config, s3_server, s3_bucket):
    config = stack_config
    env = {**FAST, **memory.memory_settings(config), **IMAGE_ENV}
    _, url = processes.web(config.web.server, env={**env, **s3_server.env(s3_bucket, "web")})
    assert config.worker.concurrency == 1  # the contract's worker command runs -c 1 here
    worker = processes.worker(env={**env, **s3_server.env(s3_bucket, "worker")})
    width, height, image = largest_accepted(config.jobs.max_pixels)
    response = requests.post(f"{url}/api/jobs", files={"image": ("big.png", image, "image/png")}, timeout=120)
    assert response.status_code == 201, response.text
    job_id = response.json()["id"]
    wait_for(lambda: Job.objects.filter(pk=job_id, status__in=["done", "failed"]).exists(), timeout=180,
             interval=0.5, what="the largest image compressed")
    job = Job.objects.get(pk=job_id)
    assert job.status == "done", job.error
    peak = pod_peak_mib(worker.pid)
    print(f"worker pod (-c {config.worker.concurrency}, {width}x{height}): peak {peak:.0f} MiB of "
          f"{config.worker.memory_mib} MiB (model {memory.worker_memory_needed_mib(config)} MiB)")
    assert peak <= memory.worker_memory_needed_mib(config) <= config.worker.memory_mib


@pytest.mark.django_db
def test_an_upload_waits_for_a_slot_then_gets_503_and_nothing_is_stored(png_bytes):
    # The slot another upload is inspecting and storing, held while this one arrives.
    from django.test import Client, override_settings

    from jobs import services

    with override_settings(JOBS_MAX_CONCURRENT_UPLOADS=1, JOBS_UPLOAD_WAIT_SECONDS=1):
        slots = services._upload_slots()
        assert slots.acquire(timeout=5)
        try:
            image = io.BytesIO(png_bytes)
            image.name = "photo.png"
            response = Client().post("/api/jobs", {"image": image})
        finally:
            slots.release()
        assert response.status_code == 503, response.content[:300]
        assert response.json()["error"] == "busy" and response["Retry-After"] == "5"
        assert "1 uploads are being stored" in response.json()["detail"]
        assert not Job.objects.exists()
        image.seek(0)
        assert Client().post("/api/jobs", {"image": image}).status_code == 201  # the slot is free again
