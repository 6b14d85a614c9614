"""The web tier (stack/workloads/web.py): `web.server` and its settings reach the server the
image's launcher starts; keep-alive, shutdown and probes hold their invariants; the HPA, the
Service and the TargetGroupBinding put the pods behind the ALB, valid for the cluster and the
bundled CRD."""

from __future__ import annotations

from typing import Any, get_args

import jsonschema
import kubernetes_validate
import pytest
import yaml

from config import launch
from config.launch import SERVERS
from stack.addons import load_balancer_controller as lbc
from stack.config.model import StackConfig, WebServer
from stack.config.names import WEB
from stack.config.rules import GRANIAN_KEEP_ALIVE_MAX_SECONDS, parse_stack_config
from stack.config.workers import worker_deployments
from stack.workloads.web import target_group_binding, web_container, web_termination_grace_seconds
from tests.infra.support.stack_files import project_config
from tests.infra.support.crds import crd_schemas
from tests.infra.support.manifests import (
    GRANIAN_LOAD_BALANCER,
    IMAGE,
    TARGET_GROUP_ARN,
    cluster_version,
    find,
    launched,
    option,
    render,
    server_settings,
)


def with_server(config: StackConfig, server: str, *, jobs: dict[str, Any] | None = None, **web: Any) -> StackConfig:
    """The dev stack on `server`; granian's with an idle timeout below its keep-alive (at most 60 s)."""
    raw = project_config("dev")
    if server == "granian":
        raw.setdefault("loadBalancer", {}).update(GRANIAN_LOAD_BALANCER)
        web = {"keepAliveSeconds": 60, **web}
    raw.setdefault("web", {}).update({"server": server, **web})
    raw.setdefault("jobs", {}).update(jobs or {})
    return parse_stack_config(raw)


def rendered_web_container(config: StackConfig) -> dict[str, Any]:
    return find(render(config), "Deployment", WEB)["spec"]["template"]["spec"]["containers"][0]


@pytest.mark.parametrize("server", SERVERS)
def test_the_pods_settings_reach_the_server_the_launcher_starts(server: str, stack_config: StackConfig) -> None:
    # Two processes of 16 threads, an upload slot each: 1104 MiB under uWSGI (stack.config.memory).
    keep_alive = 58 if server == "granian" else 90  # granian keeps an idle connection at most 60 s
    config = with_server(stack_config, server, jobs={"uploadsPerWebPod": 2}, memoryMib=1152,
                         gunicornWorkers=2, threads=16, keepAliveSeconds=keep_alive,
                         gracefulTimeoutSeconds=25, timeoutSeconds=70)
    command = launched(rendered_web_container(config))
    assert command[0].endswith(server)
    settings = server_settings(command, server)
    assert settings["processes"] == "2" and settings["threads"] == "16"
    # Idle connections outlive the ALB's, so the ALB never reuses one the server just closed.
    assert settings["keep_alive"] == str(keep_alive)
    assert keep_alive > config.load_balancer.idle_timeout_seconds
    assert settings["graceful"] == "25"
    assert settings["bind"] == "127.0.0.1:8080"  # on loopback behind the pod's proxy


def test_uwsgi_keeps_connections_in_its_router_and_stops_gracefully(stack_config: StackConfig) -> None:
    config = with_server(stack_config, "uwsgi", keepAliveSeconds=90, gracefulTimeoutSeconds=25, timeoutSeconds=70)
    command = launched(rendered_web_container(config))
    assert command[0].endswith("uwsgi")
    # The router (not --http11-socket), on loopback behind the pod's proxy.
    assert option(command, "--http") == "127.0.0.1:8080"
    assert "--http-keepalive=90" in command
    assert option(command, "--harakiri") == "70"
    assert option(command, "--worker-reload-mercy") == "25"
    assert option(command, "--hook-master-start") == "unix_signal:15 gracefully_kill_them_all"
    assert "--die-on-term" in command
    spec = find(render(config), "Deployment", WEB)["spec"]["template"]["spec"]
    # The grace period covers the preStop pause and uWSGI's mercy for requests in flight.
    assert spec["terminationGracePeriodSeconds"] >= config.web.pre_stop_seconds + 25


@pytest.mark.parametrize("server", SERVERS)
def test_each_server_is_probed_on_its_port_and_validates(server: str, stack_config: StackConfig) -> None:
    # Either server's worker processes serve the probes on a port of their own (the image's PROBE_BIND;
    # under uWSGI started after the fork, service/config/wsgi.py), outside the request pool.
    config = with_server(stack_config, server)
    container = rendered_web_container(config)
    # The probe server serves /metrics too: its port is the one named `metrics` the collector keeps.
    assert {"name": "metrics", "containerPort": 8001, "protocol": "TCP"} in container["ports"]
    for probe, path in (("startupProbe", "/healthz"), ("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        assert container[probe]["httpGet"] == {"path": path, "port": 8001}
    for o in render(config):
        if not o["apiVersion"].startswith(("elbv2.k8s.aws/", "keda.sh/")):  # CRDs: validated elsewhere
            kubernetes_validate.validate(o, cluster_version(config), strict=True)


def test_granian_serves_wsgi_and_is_killed_only_after_its_drain(stack_config: StackConfig) -> None:
    """granian stops accepting on SIGTERM and kills a worker still busy after
    --workers-kill-timeout (granian 2.8, granian/server/common.py ``_stop_workers``): the pod's
    grace covers the preStop pause, the proxy's drain and that timeout."""
    config = with_server(stack_config, "granian", gracefulTimeoutSeconds=25)
    command = launched(rendered_web_container(config))
    assert command[0].endswith("granian") and command[-1] == "config.wsgi:application"
    assert option(command, "--interface") == "wsgi" and "--no-ws" in command
    assert option(command, "--workers-kill-timeout") == "25"
    assert web_termination_grace_seconds(config.web) > config.web.pre_stop_seconds + 25
    spec = find(render(config), "Deployment", WEB)["spec"]["template"]["spec"]
    assert spec["terminationGracePeriodSeconds"] == web_termination_grace_seconds(config.web)


def test_the_config_and_the_launcher_agree_on_the_servers_and_granians_keep_alive() -> None:
    # Two sides of the container contract: the stack config offers what the image's launcher
    # starts, and refuses a granian keep-alive exactly where the launcher would.
    assert set(get_args(WebServer)) == set(SERVERS)
    most = {"WEB_SERVER": "granian", "WEB_KEEP_ALIVE_SECONDS": str(GRANIAN_KEEP_ALIVE_MAX_SECONDS)}
    assert option(launch.command("web", most), "--http1-header-read-timeout") == str(GRANIAN_KEEP_ALIVE_MAX_SECONDS * 1000)
    with pytest.raises(launch.SettingError, match="WEB_KEEP_ALIVE_SECONDS"):
        launch.command("web", {**most, "WEB_KEEP_ALIVE_SECONDS": str(GRANIAN_KEEP_ALIVE_MAX_SECONDS + 1)})


def test_default_server_is_granian() -> None:
    # docs/web-server.md: the maintained server with the least CPU per request.
    raw = project_config("dev")
    raw.get("web", {}).pop("server", None)
    assert parse_stack_config(raw).web.server == "granian"


def test_gunicorn_command_follows_config(stack_config: StackConfig) -> None:
    stack_config = stack_config.model_copy(update={"web": stack_config.web.model_copy(update={"server": "gunicorn"})})
    web = stack_config.web
    container = find(render(stack_config), "Deployment", WEB)["spec"]["template"]["spec"]["containers"][0]
    command = launched(container)
    assert command[0].endswith("gunicorn") and command[1:3] == ["--config", "gunicorn.conf.py"]
    assert command[-1] == "config.wsgi"
    assert option(command, "--bind") == "127.0.0.1:8080"  # behind the pod's proxy
    assert option(command, "--workers") == str(web.gunicorn_workers)
    assert option(command, "--threads") == str(web.threads)
    assert option(command, "--keep-alive") == str(web.keep_alive_seconds)
    assert int(option(command, "--keep-alive")) > stack_config.load_balancer.idle_timeout_seconds
    assert option(command, "--graceful-timeout") == str(web.graceful_timeout_seconds)
    assert option(command, "--timeout") == str(web.timeout_seconds)
    assert container["image"] == IMAGE
    assert container["ports"] == [{"name": "metrics", "containerPort": 8001, "protocol": "TCP"}]


def keep_alive_seconds(command: list[str]) -> int:
    """The idle keep-alive of any server's command."""
    return int(server_settings(command, _server(command))["keep_alive"])


def graceful_seconds(command: list[str]) -> int:
    return int(server_settings(command, _server(command))["graceful"])


def _server(command: list[str]) -> str:
    (server,) = (s for s in SERVERS if command[0].endswith(s))
    return server


def test_keep_alive_outlasts_the_alb_idle_timeout(stack_config: StackConfig) -> None:
    # What the server the pod's launcher starts keeps, from the env the stack renders.
    container = find(render(stack_config), "Deployment", WEB)["spec"]["template"]["spec"]["containers"][0]
    assert keep_alive_seconds(launched(container)) > stack_config.load_balancer.idle_timeout_seconds


def test_web_grace_period_covers_pre_stop_and_graceful_timeout(stack_config: StackConfig) -> None:
    spec = find(render(stack_config), "Deployment", WEB)["spec"]["template"]["spec"]
    container = spec["containers"][0]
    pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    # The app pauses while the target deregisters and then while the proxy drains through it.
    assert pre_stop == stack_config.web.pre_stop_seconds + stack_config.web.graceful_timeout_seconds
    graceful = graceful_seconds(launched(container))
    assert spec["terminationGracePeriodSeconds"] > pre_stop + graceful


def test_app_outlives_the_proxy_drain_even_without_a_pause() -> None:
    config = parse_stack_config({"web": {"preStopSeconds": 0}})
    container = web_container(config, IMAGE, config_map_name="c", secret_name="s")
    assert container["lifecycle"]["preStop"]["sleep"]["seconds"] == config.web.graceful_timeout_seconds
    assert web_termination_grace_seconds(config.web) >= 2 * config.web.graceful_timeout_seconds


def test_autoscaler_bounds_follow_config(stack_config: StackConfig) -> None:
    manifests = render(stack_config)
    web = find(manifests, "HorizontalPodAutoscaler", WEB)["spec"]
    assert (web["minReplicas"], web["maxReplicas"]) == (
        stack_config.web.autoscaling.min_replicas,
        stack_config.web.autoscaling.max_replicas,
    )
    assert web["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": WEB}
    assert web["metrics"][0]["resource"]["target"]["averageUtilization"] == (
        stack_config.web.autoscaling.target_cpu_percent
    )
    # The workers scale on their queue (KEDA's ScaledObject), not on CPU.
    assert [o for o in manifests if o["kind"] == "HorizontalPodAutoscaler"] == [
        find(manifests, "HorizontalPodAutoscaler", WEB)
    ]
    for d in worker_deployments(stack_config):
        worker = find(manifests, "ScaledObject", d.name)["spec"]
        assert (worker["minReplicaCount"], worker["maxReplicaCount"]) == (
            d.spec.autoscaling.min_replicas,
            d.spec.autoscaling.max_replicas,
        )
        assert worker["scaleTargetRef"]["name"] == d.name


def test_target_group_binding_points_the_target_group_at_the_web_service(stack_config: StackConfig) -> None:
    manifests = render(stack_config)
    binding = find(manifests, "TargetGroupBinding")
    service = find(manifests, "Service", WEB)
    assert binding["spec"] == {
        "serviceRef": {"name": WEB, "port": service["spec"]["ports"][0]["port"]},
        "targetGroupARN": TARGET_GROUP_ARN,
        "targetType": "ip",
    }
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    web = find(manifests, "Deployment", WEB)
    assert web["spec"]["template"]["metadata"]["labels"].items() >= service["spec"]["selector"].items()


def test_target_group_binding_validates_against_the_bundled_crd(stack_config: StackConfig) -> None:
    binding = find(render(stack_config), "TargetGroupBinding")
    schema = crd_schemas(lbc.CRDS_FILE)[(binding["apiVersion"], binding["kind"])]
    jsonschema.validate(binding, schema)
    kubernetes_validate.validate(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": binding["metadata"]},
        cluster_version(stack_config),
        strict=True,
    )


def test_strict_crd_schema_rejects_unknown_fields() -> None:
    schema = crd_schemas(lbc.CRDS_FILE)[("elbv2.k8s.aws/v1beta1", "TargetGroupBinding")]
    binding = target_group_binding(TARGET_GROUP_ARN)
    binding["spec"]["targetGroupArn"] = TARGET_GROUP_ARN
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(binding, schema)


def test_bundled_crd_version_is_the_one_the_controller_stores() -> None:
    crd = next(
        d
        for d in yaml.safe_load_all(lbc.CRDS_FILE.read_text())
        if d and d["spec"]["names"]["kind"] == "TargetGroupBinding"
    )
    stored = [v["name"] for v in crd["spec"]["versions"] if v.get("storage")]
    assert target_group_binding("")["apiVersion"] == f"elbv2.k8s.aws/{stored[0]}"
