"""The assembled objects of the app namespace (stack/workloads/manifests.py), for every stack file:
all in the namespace, the replica counts left to the autoscalers, every core object valid for
the cluster's Kubernetes version."""

from __future__ import annotations

import kubernetes_validate
import pytest

from stack.config.model import StackConfig
from stack.config.names import NAMESPACE, WEB
from tests.infra.support.manifests import cluster_version, find, render, worker_names


def test_everything_lives_in_the_app_namespace(stack_config: StackConfig) -> None:
    for o in render(stack_config):
        if o["kind"] != "Namespace":
            assert o["metadata"]["namespace"] == NAMESPACE, o["kind"]


def test_deployments_leave_replicas_to_the_autoscaler(stack_config: StackConfig) -> None:
    # With Server-Side Apply, a replicas field in Pulumi's manifest would be re-applied on every
    # `pulumi up`, undoing the HPA's choice.
    manifests = render(stack_config)
    for name in (WEB, *worker_names(stack_config)):
        deployment = find(manifests, "Deployment", name)
        assert "replicas" not in deployment["spec"]
        assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_every_core_object_validates_against_the_cluster_schema(stack_config: StackConfig) -> None:
    for o in render(stack_config):
        if o["apiVersion"].startswith(("elbv2.k8s.aws/", "keda.sh/")):
            continue  # custom resources: validated against their bundled CRDs
        try:
            kubernetes_validate.validate(o, cluster_version(stack_config), strict=True)
        except kubernetes_validate.ValidationError as e:
            pytest.fail(f"{o['kind']} {o['metadata']['name']}: {e.message} at {list(e.caught.path)}")
