"""Slow clients against the web pod's port 8000: real gunicorn, uWSGI, granian and nginx on loopback.

Clients trickle a request's headers, or a complete header followed by an upload body, at one
byte per second. Meanwhile another client asks for `/healthz` and `GET /api/jobs/<id>`. The
app server alone (the unprotected path) and the app server behind the pod's nginx proxy
(`infra/stack/workloads/proxy.py`, the same configuration text the cluster runs) are measured.
Each case runs for a bounded time (a few seconds); the figures are printed (`-s`) and
service/README.md "Slow clients" lists them.
"""

import os
import signal
import socket
import time

import pytest
import requests
import nginx_proxy
from nginx_proxy import NGINX, UPLOAD_LIMIT, require_nginx
from service_processes import free_port

from benchmarks.slow_clients import answer, trickling
from config.launch import SERVERS
from jobs.models import Job
from stack.model.proxy import SIZING
from stack.workloads.proxy import nginx_conf

THREADS = 8
# How long another client waits for an answer before it counts as starved: the slow clients send
# for far longer, so a request queued behind them gets no answer at all.
ANSWER_TIMEOUT = 5.0
# What "answers" means: within this much of the time the same request takes with no slow client
# (measured in the same test, on the same servers, so a busy machine moves both).
ANSWER_SLACK = ANSWER_TIMEOUT / 2


def answer_time(url: str) -> float | None:
    """Seconds until `url` answered 200, or None if it did not within ANSWER_TIMEOUT."""
    status, seconds = answer(url, ANSWER_TIMEOUT)
    if status is None:
        return None
    assert status == 200, (url, status)
    return seconds


def answer_bound(urls: list[str]) -> float:
    """The slowest of `urls` with no slow client (the baseline), plus ANSWER_SLACK."""
    baseline = [answer_time(url) for url in urls]
    assert None not in baseline, f"no answer without slow clients: {dict(zip(urls, baseline))}"
    return max(t for t in baseline if t is not None) + ANSWER_SLACK


def answered_within(times: dict[str, float | None], bound: float) -> bool:
    return all(t is not None and t < bound for t in times.values())


def measure(url: str, job_id: str, count: int, kind: str) -> dict[str, float | None]:
    with trickling(url, count, kind):
        time.sleep(2.0)  # every slow connection has reached the server and started its request
        times = {"/healthz": answer_time(f"{url}/healthz"), "/api/jobs/<id>": answer_time(f"{url}/api/jobs/{job_id}")}
    shown = ", ".join(f"{path} {'no answer in %.0f s' % ANSWER_TIMEOUT if t is None else '%.0f ms' % (t * 1000)}"
                      for path, t in times.items())
    print(f"\n{count} slow clients trickling {kind}: {shown}")
    return times


@pytest.fixture
def job_id(processes) -> str:
    job = Job.objects.create(input_key="uploads/none", input_content_type="image/png", input_bytes=1,
                             input_width=1, input_height=1)
    return str(job.id)


def start_proxy(processes, app_url: str, tmp_path) -> str:
    return nginx_proxy.start_proxy(processes, app_url, tmp_path)[1]


STARVES = {("gunicorn", "headers"), ("gunicorn", "body"), ("uwsgi", "body"), ("granian", "body")}


@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize("kind", ["headers", "body"])
def test_slow_clients_starve_the_app_server_alone(processes, job_id, server, kind):
    """Without the proxy: gunicorn starves on slow headers and bodies; uWSGI's HTTP router reads
    headers in its event loop but streams the body to a worker thread, which waits for it.
    granian likewise: its Rust runtime reads the headers, then the request goes to one of the
    --blocking-threads, whose ``wsgi.input`` reads the body as it arrives (granian 2.8 does not
    buffer a body before calling the app), so 8 trickling bodies hold all 8 threads."""
    _, url = processes.web(server, threads=THREADS)
    bound = answer_bound([f"{url}/healthz", f"{url}/api/jobs/{job_id}"])
    times = measure(url, job_id, THREADS, kind)
    print(f"  ({server} alone on its port, {THREADS} threads)")
    if (server, kind) in STARVES:
        assert times == {"/healthz": None, "/api/jobs/<id>": None}, times
    else:
        assert answered_within(times, bound), (times, bound)


@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize("kind", ["headers", "body"])
def test_proxy_serves_other_clients_and_probes_while_slow_clients_trickle(processes, job_id, server, kind,
                                                                           tmp_path):
    probe_port = free_port()
    _, app_url = processes.web(server, threads=THREADS, env={"PROBE_BIND": f"127.0.0.1:{probe_port}"})
    url = start_proxy(processes, app_url, tmp_path)
    bound = answer_bound([f"{url}/healthz", f"{url}/api/jobs/{job_id}", f"http://127.0.0.1:{probe_port}/readyz"])
    # Up to the proxy's request limit, bar the one the other client's request needs.
    for count in (THREADS, SIZING.requests - 2):
        with trickling(url, count, kind) as slow:
            time.sleep(2.0)
            times = {"/healthz": answer_time(f"{url}/healthz"),
                     "/api/jobs/<id>": answer_time(f"{url}/api/jobs/{job_id}"),
                     "probe port /readyz": answer_time(f"http://127.0.0.1:{probe_port}/readyz")}
            # nginx holds every slow client (it drops none to make room).
            held = len(slow)
        assert held == count, f"nginx dropped {count - held} of {count} slow clients"
        print(f"\n{count} slow clients trickling {kind} through nginx to {server}: "
              + ", ".join(f"{p} {'no answer' if t is None else '%.0f ms' % (t * 1000)}" for p, t in times.items()))
        assert answered_within(times, bound), (times, bound)


def test_the_clusters_proxy_config_passes_nginx_own_check(tmp_path):
    """The exact text the web pod's ConfigMap carries for each stack, bar its temp directory."""
    import dataclasses
    import subprocess

    from stack.config.rules import parse_stack_config
    from stack.workloads.proxy import proxy_args
    from tests.infra.support.stack_files import project_config

    require_nginx()
    for stack in ("dev", "prod"):
        args = dataclasses.replace(proxy_args(parse_stack_config(project_config(stack)).web), temp_dir=str(tmp_path))
        conf = tmp_path / f"{stack}.conf"
        conf.write_text(nginx_conf(args))
        check = subprocess.run([NGINX, "-t", "-c", str(conf)], capture_output=True, text=True, timeout=30)
        assert check.returncode == 0, check.stderr
        assert "syntax is ok" in check.stderr


def test_the_proxys_own_errors_are_json(processes, tmp_path):
    app, app_url = processes.web("uwsgi", threads=2)
    url = start_proxy(processes, app_url, tmp_path)
    host, port = url.removeprefix("http://").split(":")
    # A body announced far over the limit is refused before it is read.
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(f"POST /api/jobs HTTP/1.1\r\nHost: localhost\r\nContent-Type: image/png\r\n"
                     f"Content-Length: {UPLOAD_LIMIT * 4}\r\n\r\n".encode())
        answer = sock.recv(65536).decode(errors="replace")
    assert answer.startswith("HTTP/1.1 413"), answer[:300]
    assert "application/json" in answer and '"error": "too_large"' in answer, answer
    # The app gone: the proxy answers 503 JSON, not nginx's HTML 502 page.
    os.killpg(app.pid, signal.SIGKILL)
    app.wait(timeout=10)
    response = requests.get(f"{url}/api/jobs/x", headers={"Host": "localhost"}, timeout=10)
    assert response.status_code == 503, response.text[:300]
    assert response.json()["error"] == "unavailable"
