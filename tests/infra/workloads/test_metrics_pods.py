"""What the app's pods carry for their metrics (stack/workloads/pods.py): the annotations the
collector discovers them by, the port it scrapes, who the pod is (the downward API), the component
its metrics carry, and a writable multiprocess directory on a read-only root filesystem."""

from __future__ import annotations

from typing import Any

from stack.config.model import StackConfig
from stack.config.names import BEAT, METRICS_DIR, WEB
from stack.config.workers import worker_deployments
from tests.infra.support.manifests import find, literal_env, render

DOWNWARD = {
    "POD_NAME": {"fieldRef": {"fieldPath": "metadata.name"}},
    "NODE_NAME": {"fieldRef": {"fieldPath": "spec.nodeName"}},
}


def from_downward_api(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e["valueFrom"] for e in container["env"] if "valueFrom" in e}


def writable_at(spec: dict[str, Any], container: dict[str, Any], path: str) -> bool:
    """Whether `path` in the container is a mounted emptyDir (its root filesystem is read-only)."""
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    volumes = {v["name"]: v for v in spec["volumes"]}
    return any(m["mountPath"] == path and "emptyDir" in volumes[m["name"]] for m in container["volumeMounts"])


def test_web_and_every_worker_serve_metrics_where_the_annotations_say(stack_config: StackConfig) -> None:
    manifests = render(stack_config)
    expected = {WEB: (8001, WEB), **{d.name: (9100, d.name) for d in worker_deployments(stack_config)}}
    for name, (port, component) in expected.items():
        template = find(manifests, "Deployment", name)["spec"]["template"]
        annotations = template["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/port"] == str(port)
        assert annotations["prometheus.io/path"] == "/metrics"
        container = template["spec"]["containers"][0]
        assert {"name": "metrics", "containerPort": port, "protocol": "TCP"} in container["ports"]
        env = literal_env(container)
        assert env["APP_COMPONENT"] == component
        assert env["PROMETHEUS_MULTIPROC_DIR"] == METRICS_DIR
        assert writable_at(template["spec"], container, METRICS_DIR)
        assert from_downward_api(container) == DOWNWARD
        if name == WEB:
            # The probe server (PROBE_BIND) serves /metrics: the annotation names its port.
            assert env.get("PROBE_BIND", "0.0.0.0:8001").endswith(f":{port}") and "METRICS_BIND" not in env
        else:
            assert env["METRICS_BIND"] == f"0.0.0.0:{port}"
    # A single `worker` carries the component "worker"; a Deployment of `workers` "worker-<key>".
    names = [d.name for d in worker_deployments(stack_config)]
    assert names == (["worker"] if not stack_config.workers else [f"worker-{k}" for k in stack_config.workers])


def test_beat_knows_who_it_is_and_serves_nothing(stack_config: StackConfig) -> None:
    if stack_config.beat is None:
        return
    template = find(render(stack_config), "StatefulSet", BEAT)["spec"]["template"]
    container = template["spec"]["containers"][0]
    assert "prometheus.io/scrape" not in template["metadata"].get("annotations", {})
    assert "ports" not in container
    assert from_downward_api(container) == DOWNWARD
    env = literal_env(container)
    assert env["APP_COMPONENT"] == BEAT and "METRICS_BIND" not in env and "PROMETHEUS_MULTIPROC_DIR" not in env
