"""A real Prometheus server for the tests: Debian's `prometheus` binary, run on a loopback port
with its own config and data directory, scraping the given targets every second.

The package's own service (systemd's prometheus.service, port 9090) plays no part: the server
here is a child of the test, started and stopped by it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.service.service_processes import free_port, wait_for

BINARY = "/usr/bin/prometheus"
SCRAPE_SECONDS = 1


@dataclass(frozen=True)
class PrometheusServer:
    url: str
    log: Path

    def query(self, promql: str, at: float | None = None) -> list[dict[str, object]]:
        form = {"query": promql} | ({"time": f"{at:.3f}"} if at is not None else {})
        body = urllib.parse.urlencode(form).encode()
        with urllib.request.urlopen(f"{self.url}/api/v1/query", data=body, timeout=30) as response:
            document = json.loads(response.read())
        assert document["status"] == "success", document
        result: list[dict[str, object]] = document["data"]["result"]
        return result

    def targets_up(self, count: int) -> bool:
        up = self.query("up")
        return len(up) >= count and all(r["value"][1] == "1" for r in up)  # type: ignore[index]

    def wait_up(self, count: int, timeout: float = 60) -> None:
        """Wait until `count` targets have been scraped successfully."""
        wait_for(lambda: self.targets_up(count), timeout=timeout, interval=0.5, what=f"{count} targets up")

    def wait_scraped(self, scrapes: int = 2) -> None:
        """Sleep until every target has been scraped `scrapes` more times."""
        time.sleep(SCRAPE_SECONDS * (scrapes + 0.5))


def binary() -> str:
    path = shutil.which("prometheus") or BINARY
    if not Path(path).exists():
        pytest.fail("Prometheus is not installed: `make system-packages` installs Debian's prometheus package")
    return path


@contextmanager
def prometheus_server(tmp: Path, targets: Sequence[str], *, metrics_path: str = "/metrics") -> Iterator[PrometheusServer]:
    """A Prometheus scraping `targets` (host:port) every second until the block ends."""
    tmp.mkdir(parents=True, exist_ok=True)
    config = tmp / "prometheus.yml"
    config.write_text(
        json.dumps(  # YAML is a superset of JSON
            {
                "global": {"scrape_interval": f"{SCRAPE_SECONDS}s", "evaluation_interval": f"{SCRAPE_SECONDS}s"},
                "scrape_configs": [
                    {
                        "job_name": "app",
                        "metrics_path": metrics_path,
                        "scrape_timeout": f"{SCRAPE_SECONDS}s",
                        "static_configs": [{"targets": list(targets)}],
                    }
                ],
            }
        )
    )
    port = free_port()
    log = tmp / "prometheus.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                binary(),
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--storage.tsdb.retention.time=1d",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = PrometheusServer(f"http://127.0.0.1:{port}", log)
    try:
        wait_for(lambda: _ready(server.url) or process.poll() is not None, timeout=60, what="Prometheus ready")
        if process.poll() is not None:
            pytest.fail(f"Prometheus exited {process.returncode}:\n{log.read_text()[-3000:]}")
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False
