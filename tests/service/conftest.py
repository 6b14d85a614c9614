"""Fixtures for the service tests: real PostgreSQL and Redis on localhost.

``SERVICE_TEST_DATABASE_URL`` and ``SERVICE_TEST_REDIS_URL`` name running servers to use;
without them the suite starts throwaway instances of its own (throwaway_servers.py). Either
way it uses its own database (pytest-django creates ``test_django_eks_service``) and its own
Redis database number, so it does not collide with a developer's ``make dev`` data or with
other test runs on the same servers.
"""

import io
import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest
import redis
from PIL import Image
from throwaway_servers import MissingServerBinaries, suite_servers

# Before django.setup(): the settings read DATABASE_URL once, and pytest-django creates the test
# database on that server. tests/conftest.py has usually started the servers already.
try:
    _servers = suite_servers()
except MissingServerBinaries as missing:
    _missing: MissingServerBinaries | None = missing
    TEST_REDIS_URL = ""
else:
    _missing = None
    TEST_REDIS_URL = _servers.redis_url
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.local"
    os.environ["DATABASE_URL"] = _servers.database_url
    os.environ["REDIS_URL"] = TEST_REDIS_URL
    os.environ.setdefault("DJANGO_LOG_LEVEL", "WARNING")
    # Uploads and results in a local directory by default, shared by the test process and the
    # service processes it starts; the tests of the S3 path name a bucket instead (s3_server.py).
    for name in ("AWS_STORAGE_BUCKET_NAME", "AWS_S3_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.pop(name, None)
    MEDIA_ROOT = tempfile.mkdtemp(prefix="django-eks-files-")
    os.environ["DJANGO_MEDIA_ROOT"] = MEDIA_ROOT

    import django

    django.setup()


def pytest_configure(config: pytest.Config) -> None:
    # When this conftest is loaded first (pytest tests/service/...), the run stops here: one
    # line saying what to install, before the session starts.
    if _missing is not None:
        raise pytest.UsageError(str(_missing))


def pytest_unconfigure(config: pytest.Config) -> None:
    if _missing is None:
        shutil.rmtree(MEDIA_ROOT, ignore_errors=True)


@pytest.fixture(scope="session")
def s3_server():
    """moto's S3 on a free loopback port for the whole session; each test makes its own bucket."""
    from s3_server import S3Server

    server = S3Server().start()
    yield server
    server.stop()


@pytest.fixture
def s3_bucket(s3_server) -> str:
    return s3_server.create_bucket()


def s3_storage_settings(server, bucket: str, kind: str) -> dict[str, object]:
    """STORAGES for this process as a pod of `kind` sees the bucket (in-process tests)."""
    from s3_server import REGION, credentials

    from config.settings.base import files_storage

    storage = files_storage(bucket=bucket, region=REGION, endpoint_url=server.url, media_root="",
                            url_expiry_seconds=300)
    keys = credentials(kind)
    storage["OPTIONS"].update(access_key=keys["AWS_ACCESS_KEY_ID"], secret_key=keys["AWS_SECRET_ACCESS_KEY"])
    return {"default": storage, "jobs": storage}


def photo_like(width: int, height: int, *, seed: int = 0) -> Image.Image:
    """A noisy image with smooth structure, which compresses like a photograph."""
    noise = Image.effect_noise((width, height), 40).convert("L")
    gradient = Image.linear_gradient("L").resize((width, height))
    mandel = Image.effect_mandelbrot((width, height), (-2.0 + seed * 0.01, -1.2, 0.8, 1.2), 60)
    return Image.merge("RGB", (gradient, mandel, noise))


def encode(image: Image.Image, fmt: str = "PNG", **params: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **params)
    return out.getvalue()


@pytest.fixture
def png_bytes() -> bytes:
    return encode(photo_like(640, 480))


@pytest.fixture(scope="session")
def test_redis() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(TEST_REDIS_URL)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def processes(transactional_db, test_redis, tmp_path, request):
    """Start real service processes against the test database and test Redis database.

    Jobs are committed for real (transactional_db), so the subprocesses see them;
    the processes are stopped before the tables are flushed.
    """
    from django.conf import settings
    from service_processes import SERVICE_DIR, Processes

    db = settings.DATABASES["default"]
    test_redis.flushdb()
    procs = Processes(
        tmp_path=tmp_path,
        base_env={
            "DJANGO_SETTINGS_MODULE": "config.settings.local",
            "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
            "REDIS_URL": TEST_REDIS_URL,
            "DJANGO_LOG_LEVEL": "INFO",
            "PYTHONPATH": str(SERVICE_DIR),
            "DJANGO_MEDIA_ROOT": MEDIA_ROOT,
        },
    )
    yield procs
    procs.stop_after(request)


def job_stored(data: bytes, width: int, height: int, content_type: str = "image/png"):
    """A committed job and its upload, with no message published: as if the web process had
    died between its commit and its publish."""
    from jobs import files
    from jobs.models import Job

    job = Job(input_content_type=content_type, input_bytes=len(data), input_width=width, input_height=height)
    job.input_key = files.file_store(key=files.upload_key(job.id), file=io.BytesIO(data), content_type=content_type)
    job.save(force_insert=True)
    return job
