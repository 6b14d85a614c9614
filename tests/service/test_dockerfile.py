"""The image definition, checked without a Docker engine: hadolint plus the contract's properties."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SERVICE_DIR = Path(__file__).resolve().parents[2] / "service"
DOCKERFILE = SERVICE_DIR / "Dockerfile"


def instructions(text: str) -> list[tuple[str, str, str]]:
    """(stage, INSTRUCTION, arguments) for each instruction, continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", text)
    stage = ""
    result = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage = args.split(" AS ")[-1].strip() if " AS " in args else args
        result.append((stage, keyword, args.strip()))
    return result


@pytest.fixture(scope="module")
def parsed() -> list[tuple[str, str, str]]:
    return instructions(DOCKERFILE.read_text())


def stage_cmd(parsed, stage: str) -> list[str]:
    [cmd] = [args for s, k, args in parsed if s == stage and k == "CMD"]
    return json.loads(cmd)  # exec form is a JSON array; shell form would not parse


def test_hadolint_passes():
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    result = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_base_images_are_pinned_and_slim(parsed):
    args = dict(v.split("=", 1) for _, k, v in parsed if k == "ARG")
    python_image = args["PYTHON_IMAGE"]
    assert re.fullmatch(r"python:3\.\d+\.\d+-slim-\w+", python_image)
    for _, keyword, value in parsed:
        if keyword == "FROM":
            image = value.split()[0]
            assert ":latest" not in image and (":" in image or image in {"${PYTHON_IMAGE}", "runtime"})


def test_builder_installs_only_the_locked_service_dependencies(parsed):
    runs = " ".join(v for s, k, v in parsed if s == "builder" and k == "RUN")
    assert "uv sync --frozen --no-dev --package django-eks-service" in runs


def test_the_locked_service_dependencies_carry_the_s3_storage_and_no_test_server():
    # What the builder's `uv sync --package django-eks-service --no-dev` installs, from the lock.
    exported = subprocess.run(
        ["uv", "export", "--package", "django-eks-service", "--no-dev", "--frozen", "--no-hashes"],
        cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True, timeout=120, check=True,
    ).stdout
    names = {line.split("==")[0] for line in exported.splitlines() if "==" in line}
    assert {"django-storages", "boto3", "botocore", "s3transfer"} <= names
    assert "moto" not in names
    # The web target's default server (and each one WEB_SERVER may pick) is in the image.
    from django_eks_runtime.launch import SERVERS, WEB_SERVER

    distribution = {"granian": "granian", "gunicorn": "gunicorn", "uwsgi": "pyuwsgi"}
    assert WEB_SERVER.default == "granian"
    assert {distribution[server] for server in SERVERS} <= names


def test_runtime_is_non_root_with_the_contract_layout(parsed):
    runtime = [(k, v) for s, k, v in parsed if s == "runtime"]
    assert ("USER", "10001:10001") in runtime
    assert ("WORKDIR", "/app") in runtime
    assert ("EXPOSE", "8000 8001") in runtime  # the app, and probes outside the request threads
    env = " ".join(v for k, v in runtime if k == "ENV")
    for expected in ("PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1", 'PATH="/opt/venv/bin:${PATH}"',
                     "DJANGO_SETTINGS_MODULE=config.settings.production", "PROBE_BIND=0.0.0.0:8001",
                     "MALLOC_MMAP_THRESHOLD_=1048576"):
        assert expected in env
    copied = " ".join(v for k, v in runtime if k == "COPY")
    for path in ("service/manage.py", "service/gunicorn.conf.py", "service/config", "service/jobs",
                 "service/benchmarks"):
        assert path in copied


def test_no_secrets_in_layers(parsed):
    text = " ".join(v for _, k, v in parsed if k in {"ENV", "ARG", "RUN"})
    for name in ("DJANGO_SECRET_KEY", "DATABASE_URL", "REDIS_URL", "PASSWORD", "TOKEN"):
        assert name not in text


def test_each_target_starts_its_process_through_the_launcher(parsed):
    from config.launch import COMMANDS

    # Exec form, no shell: the launcher execs the server, so SIGTERM reaches its main process.
    for stage, process in (("web", "web"), ("worker", "worker"), ("migrate", "migrate"), ("bench", "bench")):
        assert stage_cmd(parsed, stage) == ["python", "-m", "config.launch", process]
        assert process in COMMANDS
    # The last stage is what a plain `docker build` produces.
    assert [v for _, k, v in parsed if k == "FROM"][-1] == "runtime AS web"


def test_dockerignore_sends_only_what_the_build_needs():
    rules = [
        line.strip()
        for line in (SERVICE_DIR / "Dockerfile.dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert rules[0] == "*"
    assert {"!uv.lock", "!pyproject.toml", "!service/config/", "!service/jobs/", "!service/benchmarks/"} <= set(rules)
    assert "service/benchmarks/results/" in rules  # committed runs are not part of the image


def test_runtime_carries_the_rds_ca_bundle_the_settings_verify_against(parsed):
    # Downloaded at build time from AWS's truststore, checked to parse as CA certificates, and
    # pinned by sha256 when RDS_CA_BUNDLE_SHA256 is given.
    adds = [args for s, k, args in parsed if s == "rds-ca" and k == "ADD"]
    assert adds == ["https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem /rds-global-bundle.pem"]
    assert [a for s, k, a in parsed if s == "rds-ca" and k == "ARG"] == ['RDS_CA_BUNDLE_SHA256=""']
    (check,) = [a for s, k, a in parsed if s == "rds-ca" and k == "RUN"]
    assert "sha256sum --check" in check and "get_ca_certs()" in check
    copies = [a for s, k, a in parsed if s == "runtime" and k == "COPY"]
    assert "--from=rds-ca /rds-global-bundle.pem /etc/ssl/certs/rds-global-bundle.pem" in copies
    env = " ".join(a for s, k, a in parsed if s == "runtime" and k == "ENV")
    assert "DATABASE_CA_BUNDLE=/etc/ssl/certs/rds-global-bundle.pem" in env
