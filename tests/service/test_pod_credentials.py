"""The migration pod's wait for its EKS Pod Identity credentials, as a real process.

`python -m config.pod_credentials` (the migration Job's init container) against a local HTTP
endpoint standing in for the Pod Identity agent (169.254.170.23 in a pod): the agent answers
with an error until the association is effective, then with credentials in the container
credential format botocore reads (`AccessKeyId`, `SecretAccessKey`, `Token`, `Expiration`;
botocore/credentials.py `ContainerProvider`), and it requires the pod's token from
AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE in the Authorization header
(https://docs.aws.amazon.com/eks/latest/userguide/pod-id-how-it-works.html).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from botocore.credentials import ContainerProvider
from botocore.exceptions import CredentialRetrievalError

from config import pod_credentials

SERVICE_DIR = Path(__file__).resolve().parents[2] / "service"
TOKEN = "eks-pod-identity-token-placeholder"


class Agent(ThreadingHTTPServer):
    """Refuses the first `refusals` requests (500, as while EKS Auth cannot yet assume the
    association's role), then hands out credentials; 401 without the pod's token."""

    def __init__(self, refusals: int) -> None:
        super().__init__(("127.0.0.1", 0), AgentHandler)
        self.refusals = refusals
        self.requests = 0
        self.unauthorized = 0


class AgentHandler(BaseHTTPRequestHandler):
    server: Agent

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.server.requests += 1
        if self.headers.get("Authorization") != TOKEN:
            self.server.unauthorized += 1
            self._answer(401, {"message": "missing or invalid token"})
        elif self.server.requests <= self.server.refusals:
            self._answer(500, {"message": "Failed to assume role for the pod identity association"})
        else:
            expiration = (datetime.now(UTC) + timedelta(hours=6)).strftime("%Y-%m-%dT%H:%M:%SZ")
            self._answer(200, {
                "AccessKeyId": "ASIAPLACEHOLDER",
                "SecretAccessKey": "placeholder-secret",
                "Token": "placeholder-session-token",
                "AccountId": "123456789012",
                "Expiration": expiration,
            })  # fmt: skip

    def _answer(self, status: int, body: dict[str, str]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


def start_agent(refusals: int) -> Agent:
    agent = Agent(refusals)
    threading.Thread(target=agent.serve_forever, daemon=True).start()
    return agent


@pytest.fixture
def pod_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The variables EKS sets in a pod whose service account has an association."""
    token_file = tmp_path / "eks-pod-identity-token"
    token_file.write_text(TOKEN)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"] = str(token_file)
    yield env


def wait_process(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "config.pod_credentials", *args],
        cwd=SERVICE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_single_resolution_fails_while_the_association_is_not_yet_effective(pod_env: dict[str, str]) -> None:
    """What `migrate` met before the wait: botocore's own three tries give up in seconds."""
    agent = start_agent(refusals=4)
    try:
        pod_env[pod_credentials.FULL_URI] = f"http://127.0.0.1:{agent.server_port}/v1/credentials"
        with pytest.raises(CredentialRetrievalError):
            ContainerProvider(environ=pod_env).load()
    finally:
        agent.shutdown()


def test_the_wait_outlasts_the_refusals_and_exits_0(pod_env: dict[str, str]) -> None:
    agent = start_agent(refusals=4)
    try:
        pod_env[pod_credentials.FULL_URI] = f"http://127.0.0.1:{agent.server_port}/v1/credentials"
        result = wait_process(pod_env, "--timeout", "30", "--interval", "0.2")
    finally:
        agent.shutdown()
    assert result.returncode == 0, result.stderr
    assert "Pod Identity credentials after 2 attempt(s)" in result.stdout
    assert agent.requests == 5 and agent.unauthorized == 0


def test_a_pod_created_before_the_association_exits_at_once_with_the_ignored_code(pod_env: dict[str, str]) -> None:
    started = time.monotonic()
    assert wait_process(pod_env, "--help").returncode == 0
    start_up = time.monotonic() - started  # the baseline: the same interpreter and imports, no wait
    started = time.monotonic()
    result = wait_process(pod_env, "--timeout", "30")
    assert result.returncode == pod_credentials.NOT_INJECTED
    assert "AWS_CONTAINER_CREDENTIALS_FULL_URI is not set" in result.stderr
    # At once: no polling, so far from the 30 s it would otherwise wait.
    assert time.monotonic() - started < 2 * start_up + 5, start_up


def test_the_wait_is_bounded(pod_env: dict[str, str]) -> None:
    agent = start_agent(refusals=10_000)
    try:
        pod_env[pod_credentials.FULL_URI] = f"http://127.0.0.1:{agent.server_port}/v1/credentials"
        result = wait_process(pod_env, "--timeout", "1", "--interval", "0.5")
    finally:
        agent.shutdown()
    assert result.returncode == pod_credentials.NOT_INJECTED
    assert "no Pod Identity credentials after 1 attempt(s)" in result.stderr
