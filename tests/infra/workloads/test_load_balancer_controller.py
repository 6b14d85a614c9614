"""The AWS Load Balancer Controller in the offline recording: awaited, trimmed, upgrade-safe."""

from __future__ import annotations

from stack.tools.offline import OfflineRun, RecordedResource
from tests.infra.support.stack_files import stack_run

RELEASE = "kubernetes:helm.sh/v3:Release"
BINDING = "kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding"


def controller_release(run: OfflineRun) -> RecordedResource:
    (release,) = [r for r in run.of_type(RELEASE) if r.inputs["chart"] == "aws-load-balancer-controller"]
    return release


def release_urn(run: OfflineRun) -> str:
    return controller_release(run).urn


def test_the_release_is_awaited_until_the_controller_is_ready() -> None:
    release = controller_release(stack_run("prod"))
    # skipAwait false: Helm's --wait; the controller's readiness includes its webhook server.
    assert release.inputs["skipAwait"] is False
    assert release.inputs["timeout"] >= 300


def test_the_app_service_and_binding_wait_for_the_controller() -> None:
    run = stack_run("prod")
    service = run.named("kubernetes:core/v1:Service", "app-web")
    (binding,) = run.of_type(BINDING)
    assert release_urn(run) in service.dependencies
    assert release_urn(run) in binding.dependencies


def test_unused_webhooks_are_off_and_the_webhook_certificate_survives_upgrades() -> None:
    release = controller_release(stack_run("prod"))
    values = release.inputs["values"]
    assert values["enableServiceMutatorWebhook"] is False  # no Service of type LoadBalancer
    assert values["webhookConfig"] == {"disableIngressValidation": True}  # no Ingress
    assert values["keepTLSSecret"] is True
    # keepTLSSecret is what keeps the certificate; it applies without cert-manager only.
    assert not values.get("enableCertManager")
    # The pod mutator (readiness gates) and the TargetGroupBinding webhooks stay: the chart
    # has no switch for them, and nothing here turns the readiness gate off.
    assert "enablePodReadinessGateInject" not in values


def test_a_replaced_target_group_replaces_its_binding() -> None:
    run = stack_run("prod")
    (binding,) = run.of_type(BINDING)
    assert binding.replace_on_changes == ["spec.targetGroupARN"]
    # Created before the old one is deleted, under another name: see
    # tests/infra/test_target_group_replacement.py.
    assert binding.delete_before_replace is False
