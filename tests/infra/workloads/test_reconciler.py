"""The reconciler CronJob: schedule and thresholds from config, one pass at a time, locked down."""

from __future__ import annotations

import kubernetes_validate
import pytest

from stack.config.model import NODE_POOL_LABEL, StackConfig
from stack.config.names import NAMESPACE
from stack.config.rules import StackConfigError, parse_stack_config
from stack.model.capacity import capacity_report
from stack.model.pod_requests import RECONCILER_POD, SYSTEM_PODS, system_pool
from stack.workloads import reconciler as r
from stack.workloads.pods import CONFIG_MAP
from tests.infra.support.stack_files import project_config
from tests.infra.support.manifests import cluster_version, find, launched, render


def with_reconciler(**values: object) -> StackConfig:
    raw = project_config("dev")
    raw["reconciler"] = values
    return parse_stack_config(raw)


def test_cronjob_runs_the_reconcile_command_on_the_configured_period() -> None:
    config = with_reconciler(everyMinutes=5)
    cron = find(render(config), "CronJob", r.RECONCILER)
    assert cron["spec"]["schedule"] == "*/5 * * * *"
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert launched(container)[1:] == ["manage.py", "jobs_reconcile"]  # one pass per run
    assert container["image"].endswith(":0.1.0")
    assert pod["restartPolicy"] == "Never"
    assert pod["serviceAccountName"] == r.RECONCILER
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["resources"]["limits"]["memory"] == container["resources"]["requests"]["memory"]
    assert find(render(with_reconciler()), "CronJob", r.RECONCILER)["spec"]["schedule"] == "* * * * *"


def test_thresholds_reach_every_app_container_through_the_config_map() -> None:
    config = with_reconciler(queuedAfterSeconds=900, runningGraceSeconds=30, maxAttempts=4)
    data = find(render(config), "ConfigMap", CONFIG_MAP)["data"]
    assert data["JOBS_REQUEUE_QUEUED_AFTER"] == "900"
    assert data["JOBS_REQUEUE_RUNNING_GRACE"] == "30"
    assert data["JOBS_MAX_ATTEMPTS"] == "4"  # workers enforce it too


def test_bad_reconciler_values_name_their_key() -> None:
    with pytest.raises(StackConfigError, match=r"reconciler\.everyMinutes"):
        with_reconciler(everyMinutes=0)


def test_cronjob_validates_against_the_cluster_schema(stack_config: StackConfig) -> None:
    cron = find(render(stack_config), "CronJob", r.RECONCILER)
    kubernetes_validate.validate(cron, cluster_version(stack_config), strict=True)
    assert cron["metadata"]["namespace"] == NAMESPACE


def test_cronjob_runs_with_the_system_pods_not_on_a_worker_pool_that_may_empty() -> None:
    # prod: workers on their own tainted pool, scaled to zero when the queue is empty.
    config = parse_stack_config(project_config("prod"))
    assert config.worker.node_pool != config.web.node_pool
    pod = find(render(config), "CronJob", r.RECONCILER)["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    system = system_pool(config)
    assert pod["nodeSelector"] == {NODE_POOL_LABEL: system}
    assert not any(t.get("value") == "worker" for t in pod.get("tolerations", []))
    # The plan counts the pod there, and not on the workers' pool.
    report = capacity_report(config)
    assert report.pool(system).runs_system_pods
    assert RECONCILER_POD in SYSTEM_PODS
