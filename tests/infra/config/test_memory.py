"""The memory rule of the stack config (stack/memory.py): what each pod must hold, by key."""

from __future__ import annotations

from typing import Any

import pytest

from config.launch import SERVERS
from stack.config import memory
from stack.config.model import StackConfig
from stack.config.rules import StackConfigError, parse_stack_config
from stack.workloads.pods import CONFIG_MAP
from tests.infra.support.stack_files import project_config
from tests.infra.support.manifests import GRANIAN_LOAD_BALANCER, find, render


def dev(**sections: dict[str, Any]) -> StackConfig:
    raw = project_config("dev")
    for name, values in sections.items():
        raw[name] = {**raw.get(name, {}), **values}
    return parse_stack_config(raw)


def problems(**sections: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(StackConfigError) as caught:
        dev(**sections)
    return {p.path: p.message for p in caught.value.problems}


def test_the_web_pod_holds_uploads_whatever_the_pixel_limit() -> None:
    # The web process only inspects headers and structure: a larger pixel limit costs the
    # workers memory, never the web pods.
    refused = problems(jobs={"maxPixels": 100_000_000})
    assert list(refused) == ["worker.memoryMib"]
    assert "needs 1146 MiB" in refused["worker.memoryMib"]  # 128 + 112 + ceil(1e8 x 9.5 / 2^20 = 905.99)
    config = dev(jobs={"maxPixels": 100_000_000}, worker={"memoryMib": 1152})
    assert memory.web_memory_needed_mib(config) == memory.web_memory_needed_mib(dev())


def test_each_request_thread_and_upload_slot_costs_the_web_pod() -> None:
    # granian 1x8 with one slot: 64 + 56 + 8 x 22 + 80 = 376 MiB; 16 threads 552 MiB.
    assert memory.web_memory_needed_mib(dev()) == 376
    refused = problems(web={"threads": 16})
    assert "needs 552 MiB" in refused["web.memoryMib"] and "16 thread(s)" in refused["web.memoryMib"]
    assert "needs 456 MiB" in problems(jobs={"uploadsPerWebPod": 2})["web.memoryMib"]
    # gunicorn's arbiter and granian's main process do not load the app; uWSGI's master does and runs the router.
    assert memory.web_memory_needed_mib(dev(web={"server": "gunicorn"})) == 376
    assert memory.web_memory_needed_mib(dev(web={"server": "uwsgi"})) == 440


@pytest.mark.parametrize("server", SERVERS)
def test_upload_slots_are_shared_equally_by_the_servers_processes(server: str) -> None:
    web: dict[str, Any] = {"server": server, "gunicornWorkers": 2, "memoryMib": 4096}
    lb: dict[str, Any] = {}
    if server == "granian":  # its keep-alive is at most 60 s, above the ALB's idle timeout
        web, lb = {**web, "keepAliveSeconds": 60}, dict(GRANIAN_LOAD_BALANCER)
    refused = problems(web=web, loadBalancer=lb, jobs={"uploadsPerWebPod": 3})
    message = refused["jobs.uploadsPerWebPod"]
    assert f"multiple of web.gunicornWorkers 2 (the {server} processes of a web pod" in message
    config = dev(web=web, loadBalancer=lb, jobs={"uploadsPerWebPod": 4})
    configmap = find(render(config), "ConfigMap", CONFIG_MAP)
    assert configmap["data"]["JOBS_MAX_CONCURRENT_UPLOADS"] == "2"  # each process's share of 4
