"""Slow clients: connections that trickle a request one byte per second (the benchmark and the tests).

A slow client sends a request's headers at once and then its upload body, or its headers
themselves, one byte per second: what a client on a bad network, or an attacker, does to a server
that gives a thread to each request while it arrives.
"""

import selectors
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import requests


def slow_request_heads(kind: str) -> tuple[bytes, bytes]:
    """What a slow client sends at once, and what it then trickles one byte per second."""
    if kind == "headers":
        return b"", b"GET /api/jobs HTTP/1.1\r\nHost: localhost\r\nX-Padding: " + b"a" * 4096 + b"\r\n\r\n"
    boundary = "slowclientboundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\n"
            f"Content-Type: image/png\r\n\r\n").encode() + b"\x89PNG" + b"x" * 100_000
    head = (f"POST /api/jobs HTTP/1.1\r\nHost: localhost\r\nContent-Type: multipart/form-data; boundary={boundary}"
            f"\r\nContent-Length: {len(body) + 64}\r\n\r\n").encode()
    return head, body


@contextmanager
def trickling(url: str, count: int, kind: str) -> Iterator[list[socket.socket]]:
    """`count` connections sending `kind` ("headers" or "body") one byte per second until exit.

    The list holds the connections the server has not closed yet."""
    host, port = url.removeprefix("http://").split(":")
    head, body = slow_request_heads(kind)
    sockets = []
    stop = threading.Event()
    for _ in range(count):
        sock = socket.create_connection((host, int(port)), timeout=5)
        sock.setblocking(False)
        if head:
            _send_all(sock, head)
        sockets.append(sock)

    def run() -> None:
        position = 0
        while not stop.wait(1.0) and position < len(body):
            for sock in list(sockets):
                try:
                    sock.send(body[position:position + 1])
                except OSError:
                    sockets.remove(sock)  # the server gave up on it: that is allowed
            position += 1

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield sockets
    finally:
        stop.set()
        thread.join(timeout=5)
        for sock in sockets:
            sock.close()


def _send_all(sock: socket.socket, data: bytes) -> None:
    selector = selectors.DefaultSelector()
    selector.register(sock, selectors.EVENT_WRITE)
    while data:
        selector.select(timeout=5)
        data = data[sock.send(data):]
    selector.close()


def answer(url: str, timeout: float) -> tuple[int | None, float]:
    """(status, seconds) of one GET of `url`; status None when no answer came within `timeout`."""
    started = time.monotonic()
    try:
        response = requests.get(url, timeout=timeout, headers={"Host": "localhost"})
    except requests.RequestException:
        return None, time.monotonic() - started
    return response.status_code, time.monotonic() - started
