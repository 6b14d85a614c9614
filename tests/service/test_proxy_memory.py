"""The web pod's nginx under a real memory limit: no number of clients gets it killed.

600 uploads that sent 140 KB and then trickled got the worker OOM-killed at its old 64 MiB
limit, and 442 of them reset. Now the connection and request limits, the buffers and the memory
limit come from one `ProxySizing` (infra/stack/model/proxy.py). Here nginx runs with the
production buffers and fewer connections, in a memory cgroup of what the model gives for them
(tests/service/memory_limit.py; without a writable cgroup, an RSS watch that kills as the kernel
would), and every client slot is filled with the worst the test's nginx takes: 32 KiB of
headers of which ~1000 two-byte lines (Debian's nginx keeps no more, `max_headers`), then 140 KB of
an upload that never ends. The refused ones go on trickling: nginx closes them after the
refused requests' lingering time, so they free their slots for the next clients.

nginx's rules behind the model (nginx 1.28.0 source, cited line by line in
infra/stack/model/proxy.py): a connection's pool and header buffers
(src/http/ngx_http_request.c:397-412, 1673-1707), the request pool (ngx_http_core_module.c:
3500-3501), the body buffer of at most 1.25 x client_body_buffer_size
(src/http/ngx_http_request_body.c:175-195); limit_conn answers in the preaccess phase, before
the body is read (https://nginx.org/en/docs/http/ngx_http_limit_conn_module.html).
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import requests
from memory_limit import CgroupMemoryLimit, RssMemoryLimit, children, status_mib
from nginx_proxy import require_nginx, start_proxy

from stack.model.proxy import SIZING, ProxySizing
from stack.workloads.proxy import REFUSED_LINGER_SECONDS

# Few connections (a shared 2-core machine), the production buffers.
TEST_SIZING = ProxySizing(client_connections=48, requests=16, max_header_lines=1000)
CLIENTS = TEST_SIZING.client_connections - 2  # room for the probe after the flood
TINY_LINES = 900
BODY_SENT = 140_000


def flood_request(index: int) -> bytes:
    """Headers as large as the proxy takes (~1000 lines, 3 lines near the 8 KiB line limit), then
    the start of a 1 MB upload."""
    line = SIZING.large_header_buffer_bytes - 300
    head = (f"POST /api/jobs HTTP/1.1\r\nHost: localhost\r\nContent-Type: image/png\r\n"
            f"Content-Length: 1000000\r\nX-Client: {index}\r\n").encode()
    head += b"a\n" * TINY_LINES  # a header without a value: 2 bytes a line
    head += b"".join(f"X-Pad-{i}: ".encode() + b"p" * line + b"\r\n" for i in range(3))
    return head + b"\r\n" + b"\x89PNG" + b"x" * (BODY_SENT - 4)


def anon_kib(pid: int) -> float:
    return status_mib(pid, "RssAnon") * 1024


def answer_of(sock: socket.socket) -> bytes | None:
    """What nginx answered so far, or None while it holds the request."""
    sock.setblocking(False)
    try:
        return sock.recv(65536)
    except BlockingIOError:
        return None


def trickle_until_closed(sockets: list[socket.socket], timeout: float) -> float | None:
    """Send a byte a second on each socket; seconds until nginx closed them all, or None."""
    started = time.monotonic()
    open_ = list(sockets)
    while open_ and time.monotonic() - started < timeout:
        for sock in list(open_):
            try:
                sock.send(b"x")
            except OSError:
                open_.remove(sock)
        time.sleep(1.0)
    return None if open_ else time.monotonic() - started


def test_every_client_slot_full_stays_under_the_model_and_the_excess_gets_503_json(processes, tmp_path: Path):
    require_nginx()
    assert TEST_SIZING.large_header_buffer_bytes == SIZING.large_header_buffer_bytes
    assert TEST_SIZING.body_buffer_bytes == SIZING.body_buffer_bytes
    _, app_url = processes.web("uwsgi", threads=2)
    limit: CgroupMemoryLimit | RssMemoryLimit | None = CgroupMemoryLimit.create(limit_mib=TEST_SIZING.memory_mib)
    nginx, url = start_proxy(processes, app_url, tmp_path, sizing=TEST_SIZING,
                             cgroup_procs=None if limit is None else limit.folder / "cgroup.procs")
    if limit is None:
        limit = RssMemoryLimit(nginx.pid, limit_mib=TEST_SIZING.memory_mib)
    try:
        [worker] = children(nginx.pid)
        before = anon_kib(worker)
        host, port = url.removeprefix("http://").split(":")
        sockets = []
        for i in range(CLIENTS):
            sock = socket.create_connection((host, int(port)), timeout=30)
            sock.sendall(flood_request(i))
            sockets.append(sock)
        time.sleep(1.0)  # nginx has read what each sent
        grown = anon_kib(worker) - before
        answers = [answer_of(sock) for sock in sockets]
        kills = limit.kills()
        alive = children(nginx.pid) == [worker]
        # The held clients leave; the refused ones go on sending the body nobody reads, until
        # nginx closes them: after its lingering time for refused clients, not its default 30 s.
        for sock, answer in zip(sockets, answers):
            if answer is None:
                sock.close()
        refused_sockets = [sock for sock, answer in zip(sockets, answers) if answer is not None]
        lingered = trickle_until_closed(refused_sockets, timeout=3 * REFUSED_LINGER_SECONDS)
        for sock in refused_sockets:
            sock.close()
    finally:
        limit.remove()

    held = [i for i, answer in enumerate(answers) if answer is None]
    refused = [answer for answer in answers if answer is not None]
    modelled = (CLIENTS * TEST_SIZING.connection_bytes(header_lines=TINY_LINES + 8)
                + len(held) * TEST_SIZING.body_bytes()) / 1024
    print(f"\n{CLIENTS} clients ({len(held)} held, {len(refused)} refused) under {limit} of "
          f"{TEST_SIZING.memory_mib} MiB: worker grew {grown:.0f} KiB, modelled {modelled:.0f} KiB, {kills} kills; "
          f"refused clients closed after {lingered or 0:.0f} s")
    assert kills == 0 and alive, f"nginx's worker was killed ({kills}) under {TEST_SIZING.memory_mib} MiB"
    # Exactly the request limit is held, the first clients to arrive; every other one is answered.
    assert held == list(range(TEST_SIZING.requests)), held
    for answer in refused:
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 503 "), answer[:300]
        assert b"Content-Type: application/json" in head and b"Retry-After: 1" in head, head
        assert json.loads(body)["error"] == "busy", body
    # The model bounds what nginx took for what the clients sent (headers, a body arriving), and is
    # no loose bound: the flood took most of it.
    assert modelled / 2 < grown <= modelled, (grown, modelled)
    assert lingered is not None, f"refused clients still connected after {3 * REFUSED_LINGER_SECONDS} s"
    # The flood gone, a normal request goes through.
    response = requests.get(f"{url}/healthz", headers={"Host": "localhost"}, timeout=10)
    assert response.status_code == 200, response.text[:300]

