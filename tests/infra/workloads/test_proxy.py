"""The web pod's buffering proxy: nginx owns port 8000, the app listens on loopback behind it.

The proxy's behaviour against slow clients is measured with real processes in
tests/service/test_slow_clients.py; here, what reaches the cluster: ports, limits that agree
with the app's, keep-alive and shutdown against the ALB, Pod Security restricted, capacity.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from config.launch import SERVERS
from stack.model.proxy import SIZING, ProxySizing
from stack.config.model import StackConfig
from stack.config.names import WEB
from stack.config.rules import StackConfigError, parse_stack_config
from stack.model.pod_requests import workload_pod
from stack.workloads import proxy
from stack.workloads.pods import CONFIG_MAP
from stack.workloads.web import SERVICE_PORT
from tests.infra.support.stack_files import project_config
from tests.infra.support.manifests import GRANIAN_LOAD_BALANCER, find, launched, option, render, server_settings


def web_pod(config: StackConfig) -> dict[str, Any]:
    return find(render(config), "Deployment", WEB)["spec"]["template"]["spec"]


def containers(config: StackConfig) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in web_pod(config)["containers"]}


def nginx_conf(config: StackConfig) -> str:
    return find(render(config), "ConfigMap", proxy.CONFIG_MAP)["data"]["nginx.conf"]


def directive(conf: str, name: str) -> str:
    values = re.findall(rf"^\s*{name}\s+([^;]+);", conf, flags=re.M)
    assert len(values) == 1, f"{name}: {values}"
    return values[0]


def test_port_8000_is_the_proxys_and_the_service_still_targets_it(stack_config: StackConfig) -> None:
    pods = containers(stack_config)
    assert set(pods) == {WEB, proxy.PROXY}
    assert pods[proxy.PROXY]["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
    assert all(p["containerPort"] != 8000 for p in pods[WEB]["ports"])
    manifests = render(stack_config)
    service = find(manifests, "Service", WEB)
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert find(manifests, "TargetGroupBinding")["spec"]["serviceRef"] == {"name": WEB, "port": SERVICE_PORT}


@pytest.mark.parametrize("server", SERVERS)
def test_the_proxy_forwards_to_the_address_the_app_binds_on_loopback(server: str) -> None:
    web: dict[str, object] = {"server": server}
    lb: dict[str, object] = {}
    if server == "granian":  # its keep-alive is at most 60 s, above the ALB's idle timeout
        web, lb = {**web, "keepAliveSeconds": 60}, dict(GRANIAN_LOAD_BALANCER)
    config = parse_stack_config({"web": web, "loadBalancer": lb})
    command = launched(containers(config)[WEB])
    bind = server_settings(command, server)["bind"]
    assert bind.startswith("127.0.0.1:")
    conf = nginx_conf(config)
    assert re.search(rf"upstream app {{\s*server {re.escape(bind)};", conf), conf
    assert directive(conf, "listen") == "8000"


def test_requests_are_buffered_whole_and_the_body_limit_follows_the_apps(stack_config: StackConfig) -> None:
    conf = nginx_conf(stack_config)
    assert directive(conf, "proxy_request_buffering") == "on"
    app_limit = int(find(render(stack_config), "ConfigMap", CONFIG_MAP)["data"]["JOBS_MAX_UPLOAD_BYTES"])
    body_limit = int(directive(conf, "client_max_body_size"))
    # Above the app's own limit (the app answers 413 JSON for an image slightly too large), by
    # no more than the multipart framing.
    assert app_limit < body_limit <= app_limit + proxy.MULTIPART_OVERHEAD_BYTES
    assert int(directive(conf, "client_body_buffer_size")) <= body_limit
    # Bodies spill to the proxy's emptyDir, sized for a full upload for each request nginx lets in.
    volumes = {v["name"]: v for v in web_pod(stack_config)["volumes"]}
    size = volumes["proxy-tmp"]["emptyDir"]["sizeLimit"]
    assert int(size.removesuffix("Mi")) * 1024 * 1024 >= SIZING.requests * body_limit
    assert directive(conf, "client_body_temp_path").startswith(f"{proxy.TEMP_DIR}/")


def test_proxy_keep_alive_outlasts_the_alb_idle_timeout(stack_config: StackConfig) -> None:
    keep_alive = int(directive(nginx_conf(stack_config), "keepalive_timeout").removesuffix("s"))
    assert keep_alive > stack_config.load_balancer.idle_timeout_seconds
    assert keep_alive == stack_config.web.keep_alive_seconds


def test_the_config_rejects_a_proxy_keep_alive_below_the_alb_idle_timeout() -> None:
    raw = project_config("dev")
    raw.setdefault("web", {})["keepAliveSeconds"] = 30
    raw.setdefault("loadBalancer", {})["idleTimeoutSeconds"] = 60
    with pytest.raises(StackConfigError, match="keepAliveSeconds"):
        parse_stack_config(raw)


def test_shutdown_drains_the_proxy_before_the_app_stops(stack_config: StackConfig) -> None:
    web = stack_config.web
    spec = web_pod(stack_config)
    pods = containers(stack_config)
    hook = " ".join(pods[proxy.PROXY]["lifecycle"]["preStop"]["exec"]["command"])
    # The proxy serves through the deregistration pause, then quits gracefully and the hook waits
    # for it (a return before would let the kubelet's SIGTERM, nginx's fast stop, cut requests).
    assert hook.index(f"sleep {web.pre_stop_seconds}") < hook.index("nginx -s quit") < hook.index("nginx.pid")
    drain = int(directive(nginx_conf(stack_config), "worker_shutdown_timeout").removesuffix("s"))
    app_pause = pods[WEB]["lifecycle"]["preStop"]["sleep"]["seconds"]
    # The app keeps serving until the proxy has finished what it holds, then stops gracefully.
    assert app_pause >= web.pre_stop_seconds + drain
    assert spec["terminationGracePeriodSeconds"] > app_pause + web.graceful_timeout_seconds


def test_proxy_runs_under_pod_security_restricted(stack_config: StackConfig) -> None:
    """The restricted profile's rules (https://kubernetes.io/docs/concepts/security/pod-security-standards/)."""
    spec = web_pod(stack_config)
    allowed_volumes = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
                       "projected", "secret"}
    for volume in spec["volumes"]:
        assert set(volume) - {"name"} <= allowed_volumes, volume
    assert not any(spec.get(k) for k in ("hostNetwork", "hostPID", "hostIPC"))
    pod_context = spec["securityContext"]
    for container in spec["containers"]:
        context = {**pod_context, **container["securityContext"]}
        assert context["runAsNonRoot"] is True
        assert context.get("runAsUser", 1) != 0
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"]["drop"] == ["ALL"]
        assert set(context["capabilities"].get("add", [])) <= {"NET_BIND_SERVICE"}
        assert context["seccompProfile"]["type"] in ("RuntimeDefault", "Localhost")
        assert not context.get("privileged", False)
        assert all("hostPort" not in p for p in container.get("ports", []))
        assert context["readOnlyRootFilesystem"] is True
    sidecar = containers(stack_config)[proxy.PROXY]
    assert sidecar["securityContext"]["runAsUser"] == proxy.PROXY_UID
    # An unprivileged port: no capability needed to bind it.
    assert sidecar["ports"][0]["containerPort"] >= 1024
    # The official image through the stack's pull-through cache, pinned to a version and digest.
    assert re.fullmatch(
        r"[0-9]{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com/[a-z0-9-]+/docker/library/nginx:\d+\.\d+\.\d+-alpine"
        r"@sha256:[0-9a-f]{64}",
        sidecar["image"],
    ), sidecar["image"]
    # Everything nginx writes goes to its own emptyDir; the config is mounted read-only.
    mounts = {v["mountPath"]: v for v in sidecar["volumeMounts"]}
    assert mounts[proxy.CONFIG_DIR]["readOnly"] is True
    conf = nginx_conf(stack_config)
    for name in ("pid", "client_body_temp_path", "proxy_temp_path", "fastcgi_temp_path", "uwsgi_temp_path",
                 "scgi_temp_path"):
        assert directive(conf, name).startswith(proxy.TEMP_DIR + "/"), name
    assert mounts[proxy.TEMP_DIR]["name"] == "proxy-tmp"


def test_a_proxy_config_change_rolls_the_web_pods() -> None:
    first = find(render(parse_stack_config({"web": {"timeoutSeconds": 60}})), "Deployment", WEB)
    second = find(render(parse_stack_config({"web": {"timeoutSeconds": 90}})), "Deployment", WEB)
    key = "django-eks/proxy-config"
    assert first["spec"]["template"]["metadata"]["annotations"][key] != \
        second["spec"]["template"]["metadata"]["annotations"][key]


def test_capacity_counts_both_containers_of_the_web_pod(stack_config: StackConfig) -> None:
    def total(resource: str, unit: str) -> int:
        return sum(int(c["resources"]["requests"][resource].removesuffix(unit)) for c in web_pod(stack_config)["containers"])

    pod = workload_pod(stack_config, "web")
    assert (pod.cpu_millicores, pod.memory_mib) == (total("cpu", "m"), total("memory", "Mi"))


def test_connections_buffers_and_the_memory_limit_come_from_one_sizing(stack_config: StackConfig) -> None:
    """nginx holds at most `worker_connections` connections (one more is closed as it is accepted:
    src/event/ngx_event_accept.c:142-147 of nginx 1.28.0) and `limit_conn` requests past their
    headers; the container's limit is what the model gives for that many at their worst."""
    conf = nginx_conf(stack_config)
    sizing = SIZING
    assert int(directive(conf, "worker_connections")) == sizing.worker_connections
    assert directive(conf, "limit_conn") == f"requests {sizing.requests}"
    # Every client request past its headers, plus one connection to the app each and the idle ones kept.
    assert sizing.worker_connections >= sizing.client_connections + sizing.requests + int(directive(conf, "keepalive"))
    assert int(directive(conf, "client_header_buffer_size")) == sizing.header_buffer_bytes
    assert directive(conf, "large_client_header_buffers") == \
        f"{sizing.large_header_buffers} {sizing.large_header_buffer_bytes}"
    assert int(directive(conf, "client_body_buffer_size")) == sizing.body_buffer_bytes
    assert directive(conf, "proxy_buffers") == f"{sizing.response_buffers} {sizing.response_buffer_bytes}"
    assert int(directive(conf, "proxy_buffer_size")) == sizing.response_header_buffer_bytes
    resources = containers(stack_config)[proxy.PROXY]["resources"]
    assert resources["limits"]["memory"] == resources["requests"]["memory"] == f"{sizing.memory_mib}Mi"
    # The limit_conn key must not be empty (nginx counts no request under an empty key).
    assert directive(conf, "limit_conn_zone").startswith("$server_name ")
    assert directive(conf, "server_name") == proxy.SERVER_NAME


def test_the_proxys_memory_grows_with_what_it_may_hold() -> None:
    one_more_connection = ProxySizing(client_connections=SIZING.client_connections + 1, requests=SIZING.requests)
    one_more_request = ProxySizing(client_connections=SIZING.client_connections, requests=SIZING.requests + 1)
    # A connection may fill every header buffer; a request adds its body buffer and the app's answer.
    assert one_more_connection.memory_bytes() - SIZING.memory_bytes() > SIZING.max_header_bytes
    assert one_more_request.memory_bytes() - SIZING.memory_bytes() > \
        SIZING.body_buffer_bytes + SIZING.response_buffers * SIZING.response_buffer_bytes
    # nginx 1.28 keeps as many header lines as the bytes hold; a line cap (max_headers) lowers the cost.
    capped = ProxySizing(client_connections=SIZING.client_connections, requests=SIZING.requests, max_header_lines=1000)
    assert capped.memory_bytes() < SIZING.memory_bytes()


def test_every_status_nginx_answers_itself_goes_to_an_internal_json_location(stack_config: StackConfig) -> None:
    conf = nginx_conf(stack_config)
    pages = re.findall(r"^\s*error_page\s+([\d ]+?)\s+=(\d+)\s+(\S+);", conf, flags=re.M)
    statuses = {int(s) for codes, _, _ in pages for s in codes.split()}
    assert {400, 405, 413, 414, 494, 501, 502, 503, 504, 505} <= statuses
    for _, answer, uri in pages:
        # A URI, never a named location (@...), which fails on a request without a URI.
        assert uri.startswith(proxy.ERROR_PREFIX), uri
        block = re.search(rf"location = {re.escape(uri)} {{(.*?)\n\s*}}", conf, flags=re.S)
        assert block, uri
        assert "internal;" in block.group(1) and "default_type application/json;" in block.group(1)
        returned = re.search(r"return (\d+) '([^']*)';", block.group(1))
        assert returned and returned.group(1) == answer, block.group(1)
        # The app's error shape (service/jobs/views.py error_response).
        assert set(json.loads(returned.group(2))) == {"error", "detail"}


def test_bad_proxy_input_gets_a_clear_error() -> None:
    base = dict(listen="8000", upstream="127.0.0.1:8080", keep_alive_seconds=75, app_timeout_seconds=60)
    with pytest.raises(ValueError, match="max_upload_bytes must be positive"):
        proxy.nginx_conf(proxy.ProxyArgs(max_upload_bytes=0, **base))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="temp_dir must be an absolute directory"):
        proxy.nginx_conf(proxy.ProxyArgs(max_upload_bytes=1, temp_dir="tmp", **base))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="requests .* must not exceed client_connections"):
        ProxySizing(client_connections=4, requests=5)
    with pytest.raises(ValueError, match="body_buffer_bytes must be positive"):
        ProxySizing(client_connections=4, requests=2, body_buffer_bytes=0)
