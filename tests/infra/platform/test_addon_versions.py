"""EKS add-on versions come from the repository, never from "the newest build" at deploy time.

AWS publishes new add-on builds at any time; `get_addon_version(most_recent=True)` resolved
the newest one on every run, so a `pulumi up` of an unchanged commit could upgrade CoreDNS or
the CNI by itself. The versions are now pinned per Kubernetes version in
infra/stack/data/eks-addon-versions.csv, or, where no exact build is recorded, EKS's *default*
build for that Kubernetes version (DescribeAddonVersions `defaultVersion`,
https://docs.aws.amazon.com/eks/latest/APIReference/API_Compatibility.html), which the
data source returns when `most_recent` is false
(https://www.pulumi.com/registry/packages/aws/api-docs/eks/getaddonversion/).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, get_args

import pytest

from stack.platform.addon_versions import DEFAULT, DATA_FILE, addon_versions, pinned_addon_version
from stack.platform.eks_addons import ADDONS_AFTER_NODES, ADDONS_BEFORE_NODES
from stack.platform.observability import ADDON as OBSERVABILITY_ADDON
from stack.config.model import KubernetesVersion
from stack.tools.offline import OfflineMocks
from tests.infra.support.stack_files import run_edited

ADDONS = [*ADDONS_BEFORE_NODES, *ADDONS_AFTER_NODES, OBSERVABILITY_ADDON]
VERSIONS = list(get_args(KubernetesVersion))
# EKS add-on versions: v<upstream version>-eksbuild.<n> (DescribeAddonVersions addonVersion).
EKS_BUILD = re.compile(r"^v\d+\.\d+\.\d+-eksbuild\.\d+$")


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("addon", ADDONS)
def test_every_addon_has_a_version_for_every_allowed_kubernetes_version(addon: str, version: str) -> None:
    recorded = addon_versions()[(addon, version)]
    assert recorded == DEFAULT or EKS_BUILD.match(recorded), recorded


def test_the_data_file_lists_only_installed_addons_and_allowed_versions() -> None:
    assert {addon for addon, _ in addon_versions()} == set(ADDONS)
    assert {version for _, version in addon_versions()} == set(VERSIONS)


def test_kube_proxy_is_pinned_to_the_minor_of_its_kubernetes_version() -> None:
    """kube-proxy must match the cluster's minor version (EKS user guide, managing-kube-proxy)."""
    for version in VERSIONS:
        pinned = pinned_addon_version("kube-proxy", version)
        assert pinned is not None and pinned.startswith(f"v{version}."), pinned


def test_an_unlisted_pair_is_an_error_naming_the_data_file() -> None:
    with pytest.raises(KeyError, match=DATA_FILE.name):
        pinned_addon_version("coredns", "1.20")


@pytest.fixture
def invokes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """Every data-source call the program makes, with its arguments."""
    calls: list[tuple[str, dict[str, Any]]] = []
    answer = OfflineMocks.call

    def record(self: OfflineMocks, args: Any) -> Any:
        calls.append((args.token, dict(args.args)))
        return answer(self, args)

    monkeypatch.setattr(OfflineMocks, "call", record)
    yield calls


@pytest.mark.parametrize("version", VERSIONS)
def test_recorded_addons_carry_the_pinned_version_and_nothing_asks_for_the_newest(
    version: str, invokes: list[tuple[str, dict[str, Any]]]
) -> None:
    def cluster_version(raw: dict[str, Any]) -> None:
        raw["django-eks:cluster"]["version"] = version

    run = run_edited(cluster_version)
    addons = {a.inputs["addonName"]: a.inputs["addonVersion"] for a in run.of_type("aws:eks/addon:Addon")}
    assert set(addons) == set(ADDONS)
    lookups = [args for token, args in invokes if token == "aws:eks/getAddonVersion:getAddonVersion"]
    assert not [args for args in lookups if args.get("mostRecent")], "an add-on version resolved as the newest build"
    looked_up = {args["addonName"] for args in lookups}
    for addon, installed in addons.items():
        pinned = pinned_addon_version(addon, version)
        if pinned is not None:
            assert installed == pinned
            assert addon not in looked_up
        else:
            # EKS's default build for this Kubernetes version, as the offline engine answers it.
            assert installed.endswith(f"-for-{version}")
            assert {"addonName": addon, "kubernetesVersion": version, "mostRecent": False}.items() <= next(
                args for args in lookups if args["addonName"] == addon
            ).items()
