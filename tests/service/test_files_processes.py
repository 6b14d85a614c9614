"""The job flow through an S3 bucket with real web, worker and reconciler processes.

moto's S3 server stands in for S3; each process gets the access keys of its pod kind, and every
S3 request the flow makes (the client's fetch of a presigned URL included: it is signed with
the web pod's keys) is checked against that kind's IAM role as the program renders it.
"""

import io
import sys
import uuid
from datetime import timedelta

import pytest
import requests
from conftest import encode, photo_like
from django.utils import timezone
from PIL import Image
from s3_server import REGION, kind_of, refused_by_role
from service_processes import free_port, wait_for

from config.launch import SERVERS
from jobs.models import ExpiredJob, Job

POD_KINDS = ("web", "worker", "reconciler")


def submit(url: str, data: bytes) -> str:
    response = requests.post(f"{url}/api/jobs", files={"image": ("photo.png", data, "image/png")}, timeout=30)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def finished(url: str, job_id: str) -> dict:
    def done():
        body = requests.get(f"{url}/api/jobs/{job_id}", timeout=5).json()
        return body if body["status"] in {"done", "failed"} else None

    return wait_for(done, timeout=60, interval=0.2, what=f"job {job_id} finished")


def run_reconciler(processes, env: dict[str, str]) -> str:
    proc = processes.launch("reconciler", "reconcile", env=env)
    assert proc.wait(timeout=60) == 0, proc.log()
    return proc.log()


@pytest.mark.parametrize("server", SERVERS)
def test_upload_compress_redirect_and_expire_through_the_bucket_within_each_pods_role(
        processes, s3_server, s3_bucket, server):
    _, url = processes.web(server, env=s3_server.env(s3_bucket, "web"))
    processes.worker(env=s3_server.env(s3_bucket, "worker"))
    ready = requests.get(f"{url}/readyz", timeout=10)
    assert ready.status_code == 200 and ready.json()["checks"]["files"] == "ok", ready.text

    original = encode(photo_like(1600, 1200))
    job_id = submit(url, original)
    body = finished(url, job_id)
    assert body["status"] == "done", body
    assert body["output"]["url"] == f"/api/jobs/{job_id}/result"
    assert s3_server.keys(s3_bucket) == [f"results/{job_id}.webp", f"uploads/{job_id}"]

    redirect = requests.get(f"{url}/api/jobs/{job_id}/result", timeout=10, allow_redirects=False)
    assert redirect.status_code == 302, redirect.text
    location = redirect.headers["Location"]
    assert location.startswith(f"{s3_server.url}/{s3_bucket}/results/{job_id}.webp?")
    fetched = requests.get(location, timeout=10)
    assert fetched.status_code == 200
    assert fetched.headers["Content-Type"] == "image/webp"
    assert fetched.headers["Content-Disposition"] == f'inline; filename="{job_id}.webp"'
    image = Image.open(io.BytesIO(fetched.content))
    assert image.format == "WEBP" and image.size == (1280, 960)
    assert len(fetched.content) == body["output"]["bytes"] < len(original)

    # Past its retention (7 days from creation): gone at once, then deleted by the reconciler.
    Job.objects.filter(pk=job_id).update(created_at=timezone.now() - timedelta(days=7, minutes=1))
    assert requests.get(f"{url}/api/jobs/{job_id}", timeout=5).status_code == 410
    log = run_reconciler(processes, s3_server.env(s3_bucket, "reconciler"))
    assert "expired 1" in log, log
    assert s3_server.keys(s3_bucket) == []
    assert not Job.objects.filter(pk=job_id).exists() and ExpiredJob.objects.filter(pk=job_id).exists()
    for path in (f"/api/jobs/{job_id}", f"/api/jobs/{job_id}/result"):
        gone = requests.get(f"{url}{path}", timeout=5)
        assert gone.status_code == 410 and gone.json()["error"] == "expired", (path, gone.text)
    never = requests.get(f"{url}/api/jobs/{uuid.uuid4()}", timeout=5)
    assert never.status_code == 404 and never.json()["error"] == "not_found"

    calls = s3_server.calls_on(s3_bucket)
    made = {(kind_of(call, POD_KINDS), call.operation) for call in calls}
    print("S3 calls by pod kind:", sorted(made))
    assert made >= {("web", "HeadBucket"), ("web", "PutObject"), ("web", "GetObject"),  # the presigned fetch
                    ("worker", "HeadBucket"), ("worker", "GetObject"), ("worker", "PutObject"),
                    ("reconciler", "DeleteObject")}
    assert {op for kind, op in made if kind == "reconciler"} == {"DeleteObject"}
    assert list(refused_by_role(calls)) == []


def missing_bucket() -> str:
    return f"django-eks-test-missing-{uuid.uuid4().hex[:8]}"


@pytest.mark.parametrize("server", SERVERS)
def test_readiness_fails_naming_a_bucket_that_does_not_exist(processes, s3_server, server):
    bucket = missing_bucket()
    _, url = processes.web(server, env=s3_server.env(bucket, "web"))
    response = requests.get(f"{url}/readyz", timeout=10)
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["database"] == "ok" and checks["redis"] == "ok"
    assert checks["files"].startswith("unavailable:") and f"bucket '{bucket}' does not exist" in checks["files"]
    assert requests.get(f"{url}/healthz", timeout=10).status_code == 200


@pytest.fixture
def s3_with_auth(processes):
    """A second moto server, in a process of its own, that checks every request's credentials."""
    port = free_port()
    proc = processes.start("moto", [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)])
    endpoint = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if proc.popen.poll() is not None:
            raise RuntimeError(proc.log())
        try:
            return requests.get(f"{endpoint}/moto-api/", timeout=1).status_code < 500
        except requests.RequestException:
            return False

    wait_for(up, timeout=60, interval=0.2, what="moto server")
    import boto3

    bucket = f"django-eks-test-auth-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=endpoint, region_name=REGION, aws_access_key_id="x",
                 aws_secret_access_key="x").create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    # From now on moto authenticates every request, as S3 does: unknown keys are refused.
    requests.post(f"{endpoint}/moto-api/reset-auth", data=b"0", timeout=10).raise_for_status()
    return endpoint, bucket


def test_readiness_fails_naming_the_bucket_when_its_credentials_are_refused(processes, s3_server, s3_with_auth):
    endpoint, bucket = s3_with_auth
    env = {**s3_server.env(bucket, "web"), "AWS_S3_ENDPOINT_URL": endpoint}
    _, url = processes.web("uwsgi", env=env)
    response = requests.get(f"{url}/readyz", timeout=10)
    assert response.status_code == 503, response.text
    files = response.json()["checks"]["files"]
    assert f"bucket '{bucket}': access denied (HeadBucket: 403)" in files, files


def test_a_worker_that_cannot_reach_its_bucket_exits_naming_it(processes, s3_server, s3_with_auth):
    bucket = missing_bucket()
    endpoint, refusing = s3_with_auth
    for name, env in (("worker-missing", s3_server.env(bucket, "worker")),
                      ("worker-refused", {**s3_server.env(refusing, "worker"), "AWS_S3_ENDPOINT_URL": endpoint})):
        proc = processes.launch(name, "worker", "--hostname", f"{name}@%h",
                                env={**env, "CELERY_HEARTBEAT_FILE": str(processes.tmp_path / f"{name}.hb")})
        assert proc.wait(timeout=60) == 1, proc.log()
        log = proc.log()
        assert "worker cannot start: uploads and results are unreachable" in log, log
        wanted = bucket if name == "worker-missing" else refusing
        assert f"bucket '{wanted}'" in log, log
        assert "ready." not in log  # it never consumed
