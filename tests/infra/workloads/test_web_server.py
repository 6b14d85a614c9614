"""`web.server`: the web Deployment's settings reach the image's launcher (service/config/launch.py),
which starts either application server with them; probes, and validity for the cluster."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest

from config.launch import SERVERS
from stack.config.model import StackConfig
from stack.config.rules import parse_stack_config
from stack.workloads import manifests as m
from tests.infra.support.stack_files import project_config
from tests.infra.workloads.test_workloads_manifests import cluster_version, find, launched, option, render


def with_server(config: StackConfig, server: str, *, jobs: dict[str, Any] | None = None, **web: Any) -> StackConfig:
    raw = project_config("dev")
    raw.setdefault("web", {}).update({"server": server, **web})
    raw.setdefault("jobs", {}).update(jobs or {})
    return parse_stack_config(raw)


def web_container(config: StackConfig) -> dict[str, Any]:
    return find(render(config), "Deployment", m.WEB)["spec"]["template"]["spec"]["containers"][0]


@pytest.mark.parametrize("server", SERVERS)
def test_the_pods_settings_reach_the_server_the_launcher_starts(server: str, stack_config: StackConfig) -> None:
    # Two processes of 16 threads, an upload slot each: 1104 MiB under uWSGI (stack.model.memory).
    config = with_server(stack_config, server, jobs={"uploadsPerWebPod": 2}, memoryMib=1152,
                         gunicornWorkers=2, threads=16, keepAliveSeconds=90,
                         gracefulTimeoutSeconds=25, timeoutSeconds=70)
    command = launched(web_container(config))
    assert command[0].endswith(server)
    keep_alive = "--http-keepalive" if server == "uwsgi" else "--keep-alive"
    graceful = "--worker-reload-mercy" if server == "uwsgi" else "--graceful-timeout"
    workers = "--processes" if server == "uwsgi" else "--workers"
    bind = "--http" if server == "uwsgi" else "--bind"
    assert option(command, workers) == "2" and option(command, "--threads") == "16"
    # Idle connections outlive the ALB's, so the ALB never reuses one the server just closed.
    assert option(command, keep_alive) == "90"
    assert 90 > config.load_balancer.idle_timeout_seconds
    assert option(command, graceful) == "25"
    assert option(command, bind) == "127.0.0.1:8080"  # on loopback behind the pod's proxy


def test_uwsgi_keeps_connections_in_its_router_and_stops_gracefully(stack_config: StackConfig) -> None:
    config = with_server(stack_config, "uwsgi", keepAliveSeconds=90, gracefulTimeoutSeconds=25, timeoutSeconds=70)
    command = launched(web_container(config))
    assert command[0].endswith("uwsgi")
    # The router (not --http11-socket), on loopback behind the pod's proxy.
    assert option(command, "--http") == "127.0.0.1:8080"
    assert "--http-keepalive=90" in command
    assert option(command, "--harakiri") == "70"
    assert option(command, "--worker-reload-mercy") == "25"
    assert option(command, "--hook-master-start") == "unix_signal:15 gracefully_kill_them_all"
    assert "--die-on-term" in command
    spec = find(render(config), "Deployment", m.WEB)["spec"]["template"]["spec"]
    # The grace period covers the preStop pause and uWSGI's mercy for requests in flight.
    assert spec["terminationGracePeriodSeconds"] >= config.web.pre_stop_seconds + 25


@pytest.mark.parametrize("server", SERVERS)
def test_each_server_is_probed_on_its_port_and_validates(server: str, stack_config: StackConfig) -> None:
    # Either server's worker processes serve the probes on a port of their own (the image's PROBE_BIND;
    # under uWSGI started after the fork, service/config/wsgi.py), outside the request pool.
    config = with_server(stack_config, server)
    container = web_container(config)
    assert {"name": "probes", "containerPort": 8001, "protocol": "TCP"} in container["ports"]
    for probe, path in (("startupProbe", "/healthz"), ("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        assert container[probe]["httpGet"] == {"path": path, "port": "probes"}
    for o in render(config):
        if not o["apiVersion"].startswith(("elbv2.k8s.aws/", "keda.sh/")):  # CRDs: validated elsewhere
            kubernetes_validate.validate(o, cluster_version(config), strict=True)


def test_default_server_is_uwsgi() -> None:
    raw = project_config("dev")
    raw.get("web", {}).pop("server", None)
    assert parse_stack_config(raw).web.server == "uwsgi"
