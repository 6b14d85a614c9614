"""Celery beat: one pod that publishes the periodic tasks, as a StatefulSet of one replica.

Beat run twice publishes every periodic task twice, so there must never be two, including
during a rollout and a node drain. A Deployment cannot promise that: with `strategy: Recreate`
it waits for the old pods only on a rollout; a pod evicted by a drain (or deleted) belongs to
its ReplicaSet, which creates the replacement at once, "even if the old Pod is still in a
Terminating state" (https://kubernetes.io/docs/concepts/workloads/controllers/deployment/
#recreate-deployment, which points to a StatefulSet for an "at most" guarantee).

A StatefulSet gives its one pod a fixed name, `beat-0`, and "ensures that, at any time, there
is at most one Pod with a given identity running in a cluster"
(https://kubernetes.io/docs/tasks/run-application/force-delete-stateful-set-pod/): the controller
creates the new `beat-0` only once the old object is gone from the API server, i.e. after the
old pod has stopped (its grace period ended or the kubelet confirmed its exit). A rolling
update of a StatefulSet deletes a pod before it creates its replacement and has no surge
(https://kubernetes.io/docs/concepts/workloads/controllers/statefulset/#rolling-updates), and a
drain evicts `beat-0` the same way. The price is a gap of a few seconds between the old pod's
exit and the new one's start, during which a tick may be late (beat publishes what fell due
when it starts again, from its schedule); and a node that stops answering keeps `beat-0`
Terminating until the node is gone or the pod is force-deleted, the same at-most-once rule.

No PodDisruptionBudget: with one replica any budget either blocks every drain or allows the
eviction anyway.
"""

from __future__ import annotations

from stack.config.model import StackConfig
from stack.config.names import BEAT
from stack.model.pod_requests import beat_pool
from stack.workloads import pods


TERMINATION_GRACE_SECONDS = 30
"""Beat holds no task: SIGTERM stops it at once, the grace is only the usual ceiling."""


def beat_statefulset(
    config: StackConfig,
    image: str,
    *,
    config_map_name: str = pods.CONFIG_MAP,
    secret_name: str = pods.SECRET,
) -> pods.Manifest:
    """The beat pod, one and never two (see the module's docstring)."""
    beat = config.beat
    if beat is None:
        raise ValueError("the stack configures no beat")
    pool_name = beat_pool(config)
    # The schedule's state file (celerybeat-schedule) goes to the writable /tmp.
    # The launcher's `beat`: the demo's (its Celery app filled in) or the runtime package's, which
    # an app's pod tells its Celery app (APP_CELERY), as its workers' do.
    container = pods.app_container(
        BEAT, image, pods.launch_command(BEAT, config.app), config_map_name=config_map_name,
        secret_name=secret_name, cpu_millicores=beat.cpu_millicores, memory_mib=beat.memory_mib,
    )  # fmt: skip
    # Beat serves no metrics: who it is only (its log lines and anything it reports carry it).
    container["env"] = [
        *(pods.env_list({"APP_CELERY": config.app.celery}) if config.app is not None else []),
        *pods.downward_env(BEAT),
    ]
    spec = pods.pod_spec(
        component=BEAT,
        pool_name=pool_name,
        pool=config.node_pools[pool_name],
        container=container,
        termination_grace_seconds=TERMINATION_GRACE_SECONDS,
        spread=False,
    )
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": pods.metadata(BEAT, BEAT),
        "spec": {
            "replicas": 1,
            # The governing Service of the pods' DNS names: beat is never called, so none is
            # created; the name only fills the field.
            "serviceName": BEAT,
            "selector": {"matchLabels": pods.selector_labels(BEAT)},
            # OrderedReady (the default) and RollingUpdate without maxUnavailable above 1:
            # the one pod is deleted, then recreated.
            "podManagementPolicy": "OrderedReady",
            "updateStrategy": {"type": "RollingUpdate"},
            "revisionHistoryLimit": 5,
            "template": pods.pod_template(BEAT, spec),
        },
    }
