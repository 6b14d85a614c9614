"""The web pod's nginx proxy (infra/stack/workloads/proxy.py's text) started by the tests, on loopback."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from service_processes import free_port

from stack.model.proxy import SIZING, ProxySizing
from stack.workloads.proxy import ProxyArgs, nginx_conf, proxy_command

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
UPLOAD_LIMIT = 10 * 1024 * 1024


def require_nginx() -> None:
    if not os.access(NGINX, os.X_OK):
        pytest.fail("nginx is not installed: apt-get install nginx-light (make test installs it)")


def start_proxy(processes, app_url: str, tmp_path: Path, *, sizing: ProxySizing = SIZING,
                cgroup_procs: Path | None = None):
    """nginx in front of `app_url`; returns (its process, its URL). With `cgroup_procs`, nginx
    starts inside that memory cgroup, so everything it allocates is charged there, as in its
    container."""
    require_nginx()
    port = free_port()
    temp = tmp_path / "nginx"
    temp.mkdir(exist_ok=True)
    conf = tmp_path / "nginx.conf"
    conf.write_text(nginx_conf(ProxyArgs(
        listen=f"127.0.0.1:{port}", upstream=app_url.removeprefix("http://"), max_upload_bytes=UPLOAD_LIMIT,
        keep_alive_seconds=75, app_timeout_seconds=60, temp_dir=str(temp), sizing=sizing)))
    command = proxy_command(str(conf))
    command[0] = NGINX
    if command[-1] == "daemon off;" and os.geteuid() == 0:
        # As root (CI containers) nginx's workers would switch to `nobody`, who cannot enter tmp_path.
        command[-1] = "daemon off; user root;"
    if cgroup_procs is not None:
        command = ["/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"', str(cgroup_procs), *command]
    proc = processes.start("nginx", command, cwd=tmp_path)
    url = f"http://127.0.0.1:{port}"
    processes.wait_http(proc, f"{url}/healthz")
    return proc, url
