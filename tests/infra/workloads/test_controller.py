"""The AWS Load Balancer Controller as `Workloads` registers it (stack/workloads/controller.py):
awaited, trimmed, upgrade-safe in the offline recording; its chart values, Pod Identity trust and
IAM policy as the pinned release publishes them."""

from __future__ import annotations

from stack.addons import load_balancer_controller as lbc
from stack.config.model import StackConfig
from stack.platform.iam import trust_policy
from stack.tools.offline import OfflineRun, RecordedResource
from tests.infra.support.stack_files import stack_run
from tests.infra.support.workload_mocks import RecordingMonitor, run, workloads

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


def test_controller_values_name_cluster_region_and_vpc() -> None:
    values = lbc.chart_values(cluster_name="django-eks-prod", region="eu-west-1", vpc_id="vpc-0123")
    assert values["clusterName"] == "django-eks-prod"
    assert values["region"] == "eu-west-1"
    assert values["vpcId"] == "vpc-0123"
    assert values["replicaCount"] == 2
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


def test_controller_release_is_pinned_and_configured(monitor: RecordingMonitor, prod_config: StackConfig) -> None:
    run(lambda: workloads(prod_config) and None)
    release = monitor.one("kubernetes:helm.sh/v3:Release").inputs
    assert release["chart"] == "aws-load-balancer-controller"
    assert release["version"] == lbc.CHART_VERSION
    assert release["repositoryOpts"] == {"repo": "https://aws.github.io/eks-charts"}
    assert release["namespace"] == "kube-system"
    values = release["values"]
    assert values["clusterName"] == "django-eks-test"
    assert values["vpcId"] == "vpc-0123456789abcdef0"
    assert values["region"] == prod_config.region
    assert values["replicaCount"] == 2
    assert values["serviceAccount"]["name"] == lbc.SERVICE_ACCOUNT
    association = monitor.one("aws:eks/podIdentityAssociation:PodIdentityAssociation").inputs
    assert association["namespace"] == "kube-system"
    assert association["serviceAccount"] == values["serviceAccount"]["name"]
    assert association["clusterName"] == "django-eks-test"
