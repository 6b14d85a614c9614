"""The web process as a hostile client meets it: each real web server, raw sockets, concurrent calls;
and the web pod as a whole, the app behind its nginx proxy."""

import json
import os
import signal
import socket
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests
from conftest import encode, photo_like
from nginx_proxy import start_proxy
from service_processes import free_port, wait_for

from config.launch import SERVERS
from jobs.models import Job

IO_ON = {"API_IO_ENABLED": "true"}


def assert_json_error(response: requests.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text[:500]
    assert response.headers["Content-Type"].startswith("application/json"), response.text[:500]
    body = response.json()
    assert body["error"] == code, body
    assert body["detail"]
    return body


def raw_request(url: str, head: bytes, body: bytes = b"") -> bytes:
    """Send bytes that requests would not send (a broken multipart body) and read the answer."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head + body)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.fixture(params=SERVERS)
def web(processes, request):
    _, url = processes.web(request.param, env=IO_ON)
    return url


def test_django_400s_are_json(web):
    too_many_files = [("image", (f"f{i}.png", b"x", "image/png")) for i in range(101)]
    assert_json_error(requests.post(f"{web}/api/jobs", files=too_many_files, timeout=30), 400, "too_many_files")

    too_many_fields = {f"field{i}": "x" for i in range(1001)}
    response = requests.post(f"{web}/api/jobs", files={"image": ("a.png", b"x", "image/png")},
                             data=too_many_fields, timeout=30)
    assert_json_error(response, 400, "too_many_fields")

    body = b"--abc\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\n\r\nxx"
    answer = raw_request(web, b"POST /api/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                              b"Content-Type: multipart/form-data; boundary=\r\n"
                              b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n", body)
    status_line, _, rest = answer.partition(b"\r\n")
    assert b" 400 " in status_line, answer[:300]
    assert b"application/json" in rest and b'"error": "bad_request"' in rest, answer[:600]

    assert_json_error(requests.get(f"{web}/api/jobs/{uuid.uuid4()}", headers={"Host": "evil.example.com"},
                                   timeout=10), 400, "disallowed_host")


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_writes_to_read_only_resources_are_405_json_not_csrf_403(web, method):
    for path in [f"/api/jobs/{uuid.uuid4()}", f"/api/jobs/{uuid.uuid4()}/result", "/api/io?ms=1"]:
        response = requests.request(method, f"{web}{path}", data=b"x", timeout=10)
        body = assert_json_error(response, 405, "method_not_allowed")
        assert response.headers["Allow"] == "GET", body


@pytest.mark.parametrize("server", SERVERS)
def test_io_endpoint_is_off_unless_enabled(processes, server):
    _, url = processes.web(server)
    assert_json_error(requests.get(f"{url}/api/io", params={"ms": 5000}, timeout=10), 404, "not_found")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("kind", ["not_an_image", "corrupt_image"])
def test_errors_never_echo_the_uploaded_filename(web, kind):
    name = "secret-customer-list-2026.png"
    data = b"%PDF-1.4 not an image" * 50 if kind == "not_an_image" else encode(photo_like(300, 200))[:4000]
    response = requests.post(f"{web}/api/jobs", files={"image": (name, data, "image/png")}, timeout=30)
    assert_json_error(response, 400, kind)
    assert "secret-customer" not in response.text
    assert not Job.objects.exists()


def test_gunicorn_opens_no_control_socket(processes, tmp_path):
    runtime_dir = tmp_path / "xdg"
    runtime_dir.mkdir()
    home = tmp_path / "home"
    home.mkdir()
    web, url = processes.gunicorn(env={"XDG_RUNTIME_DIR": str(runtime_dir), "HOME": str(home)})
    assert requests.get(f"{url}/healthz", timeout=5).status_code == 200
    time.sleep(1)
    sockets = [p for p in [*runtime_dir.rglob("*"), *home.rglob("*")] if p.is_socket()]
    assert sockets == [], f"gunicorn opened a control socket: {sockets}"
    assert "control" not in web.log().lower(), web.log()[-2000:]


@pytest.mark.parametrize("server", SERVERS)
def test_probes_answer_while_every_request_thread_is_busy(processes, server):
    probe_port = free_port()
    _, url = processes.web(server, env={**IO_ON, "PROBE_BIND": f"127.0.0.1:{probe_port}"}, threads=8)
    probe_url = f"http://127.0.0.1:{probe_port}"
    started = time.monotonic()
    assert requests.get(f"{probe_url}/healthz", timeout=5).json() == {"status": "ok"}
    idle = time.monotonic() - started  # the baseline: the same probe with nothing in flight

    busy = [threading.Thread(target=lambda: requests.get(f"{url}/api/io", params={"ms": 5000}, timeout=30))
            for _ in range(16)]
    for thread in busy:
        thread.start()
    time.sleep(0.5)  # all eight request threads are asleep, eight more requests wait for one
    latencies = {}
    for path in ["/healthz", "/readyz"]:
        started = time.monotonic()
        response = requests.get(f"{probe_url}{path}", headers={"Host": "10.0.3.7"}, timeout=10)
        latencies[path] = time.monotonic() - started
        assert response.status_code == 200, response.text
    for thread in busy:
        thread.join(timeout=30)
    print(f"{server}: probe latency with 16 x /api/io?ms=5000 in flight on 8 threads: "
          + ", ".join(f"{path} {seconds * 1000:.0f} ms" for path, seconds in latencies.items())
          + f" (idle: {idle * 1000:.0f} ms)")
    # A probe queued behind the request threads would wait for a 5 s request to end.
    assert max(latencies.values()) < idle + 2.5, (latencies, idle)


@pytest.mark.parametrize("server", SERVERS)
def test_probe_port_is_not_the_api(processes, server):
    probe_port = free_port()
    processes.web(server, env={**IO_ON, "PROBE_BIND": f"127.0.0.1:{probe_port}"})
    response = requests.get(f"http://127.0.0.1:{probe_port}/api/io?ms=1", timeout=5)
    assert_json_error(response, 404, "not_found")



def worker_pids(main_pid: int) -> list[int]:
    """The request-serving processes: gunicorn's workers, uWSGI's (not its HTTP router)."""
    pids = [int(p) for p in Path(f"/proc/{main_pid}/task/{main_pid}/children").read_text().split()]
    return sorted(p for p in pids if _threads(p) > 1)  # the thread pool


def _threads(pid: int) -> int:
    try:
        return len(list(Path(f"/proc/{pid}/task").iterdir()))
    except OSError:  # exited
        return 0


def _files_closed(pid: int) -> bool:
    """Whether a killed process has closed its files (its probe socket among them).

    A process's threads drop out of /proc/<pid>/task as they exit, before the last one has
    closed the files they share; a SYN routed to the dying worker's SO_REUSEPORT socket in that
    window is queued there and reset when the socket closes. do_exit() closes the files
    (exit_files) before exit_notify() makes the task a zombie (torvalds/linux kernel/exit.c), so
    a zombie group leader with no thread left has closed them.
    """
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):  # reaped
        return True
    return state in ("Z", "X") and _threads(pid) <= 1


@pytest.mark.parametrize("server", SERVERS)
def test_the_worker_processes_serve_the_probes(processes, server):
    # uWSGI imports the app in its master and forks the workers: a probe thread started at
    # import would run in the master only. The probes must come from the processes that
    # serve requests, as under gunicorn and granian (whose workers import the app themselves,
    # granian/server/mp.py ``callback_loader()``): with the master (or arbiter) stopped they answer,
    # and when one worker dies the other's socket (SO_REUSEPORT) takes every probe.
    probe_port = free_port()
    web, _ = processes.web(server, env={**IO_ON, "PROBE_BIND": f"127.0.0.1:{probe_port}"}, processes=2, threads=4)
    probe_url = f"http://127.0.0.1:{probe_port}/healthz"
    wait_for(lambda: len(worker_pids(web.pid)) == 2, timeout=20, what=f"two {server} workers")
    time.sleep(1)  # each worker's probe thread binds right after it starts
    os.kill(web.pid, signal.SIGSTOP)
    try:
        stopped_master = [requests.get(probe_url, timeout=3).status_code for _ in range(10)]
    finally:
        os.kill(web.pid, signal.SIGCONT)
    assert stopped_master == [200] * 10
    victim = worker_pids(web.pid)[0]
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: victim not in worker_pids(web.pid) and _files_closed(victim), timeout=10,
             what="the killed worker gone, its sockets closed")
    one_worker = [requests.get(probe_url, timeout=3).status_code for _ in range(20)]
    assert one_worker == [200] * 20


TLS_CLIENT_HELLO = bytes.fromhex("16030100c8010000c40303") + bytes(range(32)) + b"\x00\x00\x02\x13\x01\x01\x00"
HOSTILE_TO_THE_PROXY = {
    # name: (what the client sends, status, error code)
    "TRACE": (b"TRACE /api/jobs HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", 405, "method_not_allowed"),
    "40 KB header": (b"GET /api/jobs HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nX-Big: " + b"a" * 40_000
                     + b"\r\n\r\n", 400, "header_too_large"),
    "40 KB URI": (b"GET /" + b"a" * 40_000 + b" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", 414,
                  "uri_too_long"),
    "Transfer-Encoding gzip": (b"POST /api/jobs HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
                               b"Transfer-Encoding: gzip\r\n\r\n", 501, "not_implemented"),
    "lowercase method": (b"get /api/jobs HTTP/1.1\r\nHost: localhost\r\n\r\n", 400, "bad_request"),
    "%00 in the path": (b"GET /api/jobs/%00 HTTP/1.1\r\nHost: localhost\r\n\r\n", 400, "bad_request"),
    "/../ in the path": (b"GET /../api/jobs HTTP/1.1\r\nHost: localhost\r\n\r\n", 400, "bad_request"),
    "TLS ClientHello": (TLS_CLIENT_HELLO, 400, "bad_request"),
    "HTTP/2 preface": (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400, "bad_request"),
    "HTTP/3.0": (b"GET /api/jobs HTTP/3.0\r\nHost: localhost\r\n\r\n", 505, "http_version_not_supported"),
    "the proxy's own error page": (b"GET /_proxy/errors/busy.json HTTP/1.1\r\nHost: localhost\r\nConnection: close"
                                   b"\r\n\r\n", 404, "not_found"),
    "the app's own 404": (b"GET /api/nowhere HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", 404,
                          "not_found"),
}


@pytest.fixture
def proxied_app(processes, tmp_path):
    _, app_url = processes.web("uwsgi", threads=2)
    return start_proxy(processes, app_url, tmp_path)[1]


def test_every_answer_of_the_pod_is_json_with_its_status(proxied_app):
    """nginx in front of the app answers each hostile request with the app's JSON error shape.

    Before, some got nginx's HTML page, and requests whose URI nginx could not parse got 500:
    an error_page to a named location needs the request's URI (nginx 1.28.0,
    src/http/ngx_http_core_module.c:2585-2591, "empty URI in redirect to named location"), and a
    URI that fails to parse is left empty (src/http/ngx_http_request.c:1294-1295), as is that of
    a request line that never parsed. An error_page to a URI redirects to that URI instead
    (src/http/ngx_http_special_response.c:609-623), whatever the request's own was.
    """
    wrong = {}
    for name, (sent, status, code) in HOSTILE_TO_THE_PROXY.items():
        answer = raw_request(proxied_app, sent)
        head, _, body = answer.partition(b"\r\n\r\n")
        status_line, *headers = head.decode(errors="replace").split("\r\n")
        content_type = [h.split(":", 1)[1].strip() for h in headers if h.lower().startswith("content-type:")]
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        if not (status_line.startswith(f"HTTP/1.1 {status} ") and content_type == ["application/json"]
                and isinstance(parsed, dict) and parsed.get("error") == code and parsed.get("detail")):
            wrong[name] = answer[:300]
    assert wrong == {}, wrong
