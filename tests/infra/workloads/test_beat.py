"""Celery beat (stack/workloads/beat.py): one pod, never two, running the runtime's beat command
on the system pods' pool unless told otherwise, with an egress of its own."""

from __future__ import annotations

from typing import Any

from stack.config.model import StackConfig
from stack.config.names import BEAT
from stack.config.rules import parse_stack_config
from stack.model.pod_requests import system_pool
from stack.workloads.pods import selector_labels
from tests.infra.support.manifests import find, launched, literal_env, render
from tests.infra.support.stack_files import project_config


def beat_config(**beat: Any) -> StackConfig:
    return parse_stack_config({**project_config("dev"), "beat": beat})


def test_beat_is_a_statefulset_of_exactly_one_pod() -> None:
    manifests = render(beat_config())
    beat = find(manifests, "StatefulSet", BEAT)
    spec = beat["spec"]
    # A StatefulSet's pod has one name (beat-0): the controller makes the next one only after
    # the last is gone, on a rollout (RollingUpdate, no surge) and after an eviction alike.
    assert spec["replicas"] == 1
    assert spec["podManagementPolicy"] == "OrderedReady"
    assert spec["updateStrategy"] == {"type": "RollingUpdate"}
    assert spec["selector"]["matchLabels"] == selector_labels(BEAT)
    container = spec["template"]["spec"]["containers"][0]
    # The demo's launcher, which names its Celery app: `celery --app config --quiet beat`.
    command = launched(container)
    assert command[0].endswith("celery") and command[1:5] == ["--app", "config", "--quiet", "beat"]
    # Nothing else runs beat, and nothing scales it.
    assert not [o for o in manifests if o["kind"] == "Deployment" and o["metadata"]["name"] == BEAT]
    assert not [o for o in manifests if o["kind"] in ("HorizontalPodAutoscaler", "ScaledObject")
                and o["spec"]["scaleTargetRef"]["name"] == BEAT]  # fmt: skip
    assert not [o for o in manifests if o["kind"] == "PodDisruptionBudget" and o["metadata"]["name"] == BEAT]


def test_an_apps_beat_runs_the_runtimes_launcher_with_its_celery_app() -> None:
    config = parse_stack_config({**project_config("exp-example"), "beat": {}})
    container = find(render(config), "StatefulSet", BEAT)["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["python", "-m", "django_eks_runtime", "beat"]
    env = literal_env(container)
    assert config.app is not None and env == {"APP_CELERY": config.app.celery, "APP_COMPONENT": BEAT}


def test_beat_runs_where_configured_else_with_the_system_pods() -> None:
    config = beat_config(cpuMillicores=200, memoryMib=320)
    spec = find(render(config), "StatefulSet", BEAT)["spec"]["template"]["spec"]
    assert spec["nodeSelector"]["django-eks/node-pool"] == system_pool(config)
    assert spec["containers"][0]["resources"] == {
        "requests": {"cpu": "200m", "memory": "320Mi"},
        "limits": {"memory": "320Mi"},
    }
    assert spec["serviceAccountName"] == BEAT


def test_beat_reaches_the_broker_and_database_but_not_aws() -> None:
    manifests = render(beat_config())
    policy = find(manifests, "NetworkPolicy", f"{BEAT}-egress")["spec"]
    assert policy["podSelector"] == {"matchLabels": selector_labels(BEAT)}
    ports = {port["port"] for rule in policy["egress"] for port in rule.get("ports", [])}
    assert ports == {53, 6379, 5432}


def test_without_beat_nothing_of_it_is_rendered() -> None:
    manifests = render(parse_stack_config(project_config("dev")))
    assert not [o for o in manifests if BEAT in o["metadata"]["name"]]
