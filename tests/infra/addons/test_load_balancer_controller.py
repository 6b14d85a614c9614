"""The AWS Load Balancer Controller's chart values, Pod Identity trust and IAM policy, as the
pinned release publishes them (stack/addons/load_balancer_controller.py); its release in the
program, its role and its order: tests/infra/addons/test_component.py."""

from __future__ import annotations

from stack.addons import component
from stack.addons import load_balancer_controller as lbc
from stack.platform.iam import trust_policy
from tests.infra.support.stack_files import stack_run

RELEASE = "kubernetes:helm.sh/v3:Release"


def test_unused_webhooks_are_off_and_the_webhook_certificate_survives_upgrades() -> None:
    release = stack_run("prod").named(RELEASE, component.LOAD_BALANCER_CONTROLLER)
    values = release.inputs["values"]
    assert values["enableServiceMutatorWebhook"] is False  # no Service of type LoadBalancer
    assert values["webhookConfig"] == {"disableIngressValidation": True}  # no Ingress
    assert values["keepTLSSecret"] is True
    # keepTLSSecret is what keeps the certificate; it applies without cert-manager only.
    assert not values.get("enableCertManager")
    # The pod mutator (readiness gates) and the TargetGroupBinding webhooks stay: the chart
    # has no switch for them, and nothing here turns the readiness gate off.
    assert "enablePodReadinessGateInject" not in values


def test_controller_values_name_its_service_account() -> None:
    values = lbc.chart_values(cluster_name="django-eks-prod", region="eu-west-1", vpc_id="vpc-0123")
    assert values["serviceAccount"]["name"] == lbc.SERVICE_ACCOUNT


def test_controller_trust_policy_is_pod_identity() -> None:
    (statement,) = trust_policy()["Statement"]
    assert statement["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    assert sorted(statement["Action"]) == ["sts:AssumeRole", "sts:TagSession"]


def test_controller_policy_is_the_published_one_and_fits_a_managed_policy() -> None:
    document = lbc.iam_policy_document()
    actions = {a for s in document["Statement"] for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert "elasticloadbalancing:RegisterTargets" in actions
    assert "elasticloadbalancing:DeregisterTargets" in actions
    assert len(lbc.compact_json(document)) <= 6144


def test_chart_pin_matches_the_bundled_policy_and_crds() -> None:
    # The IAM policy and CRDs are copies from one controller release; the chart must install
    # that same release.
    sources = (lbc.DATA_DIR.parent / "SOURCES.md").read_text()
    section = sources[sources.index("## aws-load-balancer-controller/") :]
    assert f"v{lbc.CHART_VERSION}" in section
