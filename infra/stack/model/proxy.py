"""What the web pod's buffering proxy (nginx, rendered by stack/workloads/proxy.py) needs on its node,
and the limits that keep it inside that.

nginx allocates per connection and per request, never per byte of an upload (bodies past the
body buffer go to the emptyDir), so its memory is bounded once the number of connections and
requests is: memory = base + connection slots x slot + client connections x the worst a
connection can hold while its headers arrive + requests x the worst a request adds while its
body arrives and the app answers. `ProxySizing` is that sum; the rendered `worker_connections`,
`limit_conn`, buffers and the container's memory limit all come from one `ProxySizing`, so no
number of clients can push nginx past its limit:
- a connection past `worker_connections` is closed as it is accepted, after nginx has closed
  idle keep-alive connections to make room (src/core/ngx_connection.c:1175-1200, 1373-1400;
  src/event/ngx_event_accept.c:142-147): it costs nothing;
- a request past `limit_conn` is answered 503 JSON once its headers are read, before its body
  is (limit_conn runs in the preaccess phase, the body is read by the proxy's content handler);
  its body is read and discarded into a buffer on the stack.

Allocation rules (nginx 1.28.0, https://github.com/nginx/nginx, tag release-1.28.0):
- every accepted connection gets a pool of `connection_pool_size` (default 64 pointers, 512
  bytes; src/event/ngx_event_accept.c:159, src/http/ngx_http_core_module.c:3498-3499) and a
  `client_header_buffer_size` buffer from it (src/http/ngx_http_request.c:397-412); a header
  that overflows it takes up to `large_client_header_buffers` number x size more, from the
  connection's pool, kept until the connection closes or goes idle
  (src/http/ngx_http_request.c:1673-1707, 3130-3290);
- every request gets a pool of `request_pool_size` (4096; ngx_http_core_module.c:3500-3501,
  ngx_http_request.c:573) that grows by that much for its small allocations (the parsed header
  lines); allocations of a page or more are malloc'ed (src/core/ngx_palloc.c:126-144, 214);
- the body buffer is `client_body_buffer_size`, or the body's remaining length when it is
  under 1.25 times that: at worst 1.25 x `client_body_buffer_size`
  (src/http/ngx_http_request_body.c:175-195);
- sending a buffered body to the app reads the temp file through one more buffer of
  `client_body_buffer_size` (src/http/ngx_http_upstream.c:674-675); the request line and
  headers sent to the app are copied into one buffer (src/http/modules/ngx_http_proxy_module.c:1418);
- the app's answer is read into `proxy_buffer_size` (ngx_http_upstream.c:2438) and
  `proxy_buffers` number x size, the rest to a temp file.
https://nginx.org/en/docs/http/ngx_http_core_module.html#client_body_buffer_size
https://nginx.org/en/docs/http/ngx_http_core_module.html#large_client_header_buffers
https://nginx.org/en/docs/http/ngx_http_limit_conn_module.html

The figures below are those rules plus an allowance for the allocator, and the parsed header
lines: each kept line costs ~72 bytes for as little as 2 bytes of input, and nginx 1.28 keeps
as many as the header buffers hold (`max_headers`, which caps them, came in 1.29.8). Measured:
tests/service/test_proxy_memory.py fills every client connection with the worst headers and
body the test's nginx takes, under a memory cgroup of the model's size, and checks nginx is not
killed, answers the excess 503 JSON, and grows by no more than the model says and by more than
half of it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

KIB = 1024
MIB = 1024 * 1024

CONNECTION_POOL_BYTES = 512
"""`connection_pool_size`'s default on 64-bit (64 x sizeof(void *))."""
REQUEST_POOL_BYTES = 4 * KIB
"""`request_pool_size`'s default, the block its request pool grows by."""
SLOT_BYTES = 1 * KIB
"""One `worker_connections` slot, allocated at start: the connection and its two events
(~450 bytes), with the event loop's share."""
BASE_MIB = 12
"""nginx's master and worker with the configuration loaded and no connection (measured with
Debian's nginx 1.22: 7 and 4 MiB resident, mostly the code they share), the limit_conn zone
and the allocator's free lists."""
MIN_HEADER_LINE_BYTES = 2
"""The shortest header line nginx keeps: a one-letter name and a bare LF, a header without a
value (src/http/ngx_http_parse.c:937-949)."""
HEADER_LINE_BYTES = 72
"""A kept header line in the request's pool, besides its lowercased name: its table element
(56 bytes in 1.28, with the `next` field 1.23 added; 48 before), the list's parts and the pool
block's unused end (measured 52 bytes a line with Debian's nginx 1.22)."""
ALLOCATOR_OVERHEAD = 1.25
"""An allowance on each buffer for malloc's headers, rounding and freed-but-kept memory."""


@dataclass(frozen=True)
class ProxySizing:
    """How many clients the proxy holds and how much each may cost; `memory_mib` follows."""

    client_connections: int
    """Client connections (idle keep-alive, headers arriving, answered and closing)."""
    requests: int
    """Requests past their headers (body arriving, or waiting on the app): `limit_conn`."""
    upstream_keepalive: int = 32
    """Idle connections to the app kept for reuse (`keepalive` of the upstream)."""
    header_buffer_bytes: int = 1 * KIB
    """`client_header_buffer_size`: most requests' headers fit."""
    large_header_buffers: int = 4
    large_header_buffer_bytes: int = 8 * KIB
    """`large_client_header_buffers`: a request line or header line up to 8 KiB, 32 KiB in all:
    what the app servers take (gunicorn's 8190-byte header line, uWSGI's `--buffer-size` 32 KiB,
    WEB_BUFFER_SIZE in runtime/django_eks_runtime/launch.py)."""
    max_header_lines: int | None = None
    """The header lines nginx keeps per request (`max_headers`, nginx 1.29.8 and later, and
    Debian's backport with 1000 lines); None: no such limit (the cluster's nginx 1.28), as many
    as the header bytes hold."""
    body_buffer_bytes: int = 16 * KIB
    """`client_body_buffer_size`: bodies past it spill to the emptyDir (an upload is read in
    16 KiB pieces, nginx's default on 4 KiB pages)."""
    response_header_buffer_bytes: int = 4 * KIB
    """`proxy_buffer_size`: the app's status line and headers."""
    response_buffers: int = 8
    response_buffer_bytes: int = 4 * KIB
    """`proxy_buffers`: the app's answer in memory; larger answers spill to the emptyDir."""

    def __post_init__(self) -> None:
        for name in ("client_connections", "requests", "header_buffer_bytes", "large_header_buffers",
                     "large_header_buffer_bytes", "body_buffer_bytes", "response_header_buffer_bytes",
                     "response_buffers", "response_buffer_bytes"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.upstream_keepalive < 0:
            raise ValueError(f"upstream_keepalive must not be negative, got {self.upstream_keepalive}")
        if self.requests > self.client_connections:
            raise ValueError(f"requests ({self.requests}) must not exceed client_connections "
                             f"({self.client_connections}): each request is a client's")
        if self.large_header_buffer_bytes < CONNECTION_POOL_BYTES:
            # nginx refuses it (src/http/ngx_http_core_module.c:3510-3513).
            raise ValueError(f"large_header_buffer_bytes must be at least {CONNECTION_POOL_BYTES}")

    @property
    def worker_connections(self) -> int:
        """Clients, and one connection to the app per request plus the idle ones kept."""
        return self.client_connections + self.requests + self.upstream_keepalive

    @property
    def max_header_bytes(self) -> int:
        return self.large_header_buffers * self.large_header_buffer_bytes

    @property
    def header_lines(self) -> int:
        """The most header lines a request can make nginx keep."""
        most = self.max_header_bytes // MIN_HEADER_LINE_BYTES
        return most if self.max_header_lines is None else min(most, self.max_header_lines)

    def connection_bytes(self, header_lines: int | None = None) -> int:
        """The worst a client connection holds before its request passes limit_conn (or with
        `header_lines` kept): its pool, header buffers, and the request's pool holding the
        parsed header lines."""
        lines = self.header_lines if header_lines is None else header_lines
        buffers = CONNECTION_POOL_BYTES + self.header_buffer_bytes + self.max_header_bytes + REQUEST_POOL_BYTES
        # Each line's element, and the lowercased copies of the names (fewer bytes than the headers).
        return math.ceil(buffers * ALLOCATOR_OVERHEAD) + lines * HEADER_LINE_BYTES + self.max_header_bytes

    def body_bytes(self) -> int:
        """What a request adds past limit_conn while its body arrives: the body buffer."""
        return math.ceil((math.ceil(self.body_buffer_bytes * 1.25) + CONNECTION_POOL_BYTES) * ALLOCATOR_OVERHEAD)

    def upstream_bytes(self) -> int:
        """What it adds once its body is in, while the app has it: the buffer that sends the body
        on, the copy of its headers for the app, the app's answer, the app connection's pool."""
        upstream_request = self.max_header_bytes + REQUEST_POOL_BYTES
        answer = self.response_header_buffer_bytes + self.response_buffers * self.response_buffer_bytes
        return math.ceil((self.body_buffer_bytes + upstream_request + answer + CONNECTION_POOL_BYTES)
                         * ALLOCATOR_OVERHEAD)

    def request_bytes(self) -> int:
        return self.body_bytes() + self.upstream_bytes()

    def memory_bytes(self) -> int:
        """base + connection slots x slot + client connections x connection + requests x request."""
        return (BASE_MIB * MIB + self.worker_connections * SLOT_BYTES
                + self.client_connections * self.connection_bytes() + self.requests * self.request_bytes())

    @property
    def memory_mib(self) -> int:
        return math.ceil(self.memory_bytes() / MIB)


SIZING = ProxySizing(client_connections=64, requests=32)
"""The web pod's proxy. 32 requests at once per pod is four times what its app threads serve in
the stacks' shapes (a request waits in nginx while the app is busy); twice as many connections
leave room for the ALB's idle keep-alive connections (nginx closes idle ones first when it runs
out) and for answering the excess 503. A connection's worst case is its header lines: nginx 1.28
keeps as many as 32 KiB holds, ~1.2 MiB of them; `max_headers` (nginx 1.29.8, 1000 lines by
default) would make a connection ~8x cheaper."""

# nginx itself: one worker process (the model above is one worker's); the CPU is header parsing
# and copying.
CPU_MILLICORES = 100
MEMORY_MIB = SIZING.memory_mib
