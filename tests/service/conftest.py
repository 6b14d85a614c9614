"""Fixtures for the service tests: real PostgreSQL and Redis on localhost.

The suite uses its own database (pytest-django creates ``test_django_eks_service``)
and its own Redis database number, so it does not collide with a developer's
``make dev`` data or with other test runs on the same Redis.
"""

import os

TEST_REDIS_URL = os.environ.get("SERVICE_TEST_REDIS_URL", "redis://127.0.0.1:6379/14")

os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.local"
os.environ["DATABASE_URL"] = os.environ.get(
    "SERVICE_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/django_eks_service"
)
os.environ["REDIS_URL"] = TEST_REDIS_URL
os.environ.setdefault("DJANGO_LOG_LEVEL", "WARNING")

import django  # noqa: E402

django.setup()

import io  # noqa: E402
from collections.abc import Iterator  # noqa: E402

import pytest  # noqa: E402
import redis  # noqa: E402
from PIL import Image  # noqa: E402


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
        },
    )
    yield procs
    procs.stop_all()
    if request.node.rep_call.failed if hasattr(request.node, "rep_call") else False:
        print(procs.logs())


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
