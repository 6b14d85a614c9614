"""The worker's liveness probe: ``python -m config.heartbeat --max-age N``."""

import os
import subprocess
import sys
import time
from pathlib import Path

from django_eks_runtime import heartbeat

SERVICE_DIR = Path(__file__).resolve().parents[2] / "service"


def probe(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "config.heartbeat", *args],
        cwd=SERVICE_DIR,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_fresh_file_is_healthy(tmp_path):
    path = tmp_path / "hb"
    heartbeat.touch(str(path))
    result = probe("--max-age", "60", env={"CELERY_HEARTBEAT_FILE": str(path)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok")


def test_stale_file_is_unhealthy(tmp_path):
    path = tmp_path / "hb"
    heartbeat.touch(str(path))
    old = time.time() - 120
    os.utime(path, (old, old))
    result = probe("--max-age", "60", "--file", str(path))
    assert result.returncode == 1
    assert "120s old" in result.stderr or "119s old" in result.stderr


def test_missing_file_is_unhealthy(tmp_path):
    result = probe("--max-age", "60", env={"CELERY_HEARTBEAT_FILE": str(tmp_path / "none")})
    assert result.returncode == 1
    assert "does not exist" in result.stderr


def test_age_is_measured_from_the_last_touch(tmp_path):
    path = tmp_path / "hb"
    heartbeat.touch(str(path))
    mtime = path.stat().st_mtime
    assert heartbeat.age_seconds(str(path), now=mtime + 5) == 5
