"""The version of each EKS add-on, per Kubernetes version, pinned in the repository.

`data/eks-addon-versions.csv` (sources in `data/SOURCES.md`) names, for every add-on and every
Kubernetes version the config allows, either an exact build (`v1.33.10-eksbuild.13`) or
`default`: the build EKS marks as the default for that Kubernetes version
(DescribeAddonVersions `compatibilities[].defaultVersion`), asked for with
`get_addon_version(most_recent=False)`. Never the newest build: that one changes whenever AWS
publishes a build, so every `pulumi up` of an unchanged commit could upgrade an add-on on its
own. A pinned build changes only with a commit to this file.
"""

from __future__ import annotations

import csv
from functools import cache
from pathlib import Path

DATA_FILE = Path(__file__).resolve().parents[1] / "data" / "eks-addon-versions.csv"
DEFAULT = "default"
"""In the data file: EKS's default build of the add-on for that Kubernetes version."""


@cache
def addon_versions() -> dict[tuple[str, str], str]:
    """(add-on, Kubernetes version) -> pinned build, or DEFAULT."""
    with DATA_FILE.open(newline="") as f:
        return {(row["addon"], row["kubernetes_version"]): row["version"] for row in csv.DictReader(f)}


def pinned_addon_version(addon: str, kubernetes_version: str) -> str | None:
    """The build pinned for `addon` on `kubernetes_version`; None where EKS's default is used.

    KeyError, naming the data file, for a pair the file does not list.
    """
    versions = addon_versions()
    if (addon, kubernetes_version) not in versions:
        raise KeyError(
            f"{DATA_FILE.name} has no version of {addon} for Kubernetes {kubernetes_version}: "
            f"add a row (an exact build, or {DEFAULT!r})"
        )
    version = versions[(addon, kubernetes_version)]
    return None if version == DEFAULT else version
