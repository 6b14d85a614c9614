"""The EC2 instance types this project knows, read from the bundled catalog.

`data/instance-catalog.csv` (sources and dates in `data/SOURCES.md`) gives vCPUs, memory,
the VPC CNI's max pods and the us-east-1 on-demand price of each type. The stack config
accepts only these types, so that capacity and cost can always be computed.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

DATA_DIR = Path(__file__).resolve().parents[1] / "data"

Architecture = Literal["x86_64", "arm64"]

# Graviton families carry a "g" right after the generation digit: m6g, c7g, r6gd, t4g.
_GRAVITON_FAMILY = re.compile(r"^[a-z]+\d+g[a-z]*$")


@dataclass(frozen=True)
class InstanceType:
    name: str
    vcpu: int
    memory_gib: float
    max_pods: int
    usd_per_hour: float

    @property
    def architecture(self) -> Architecture:
        family = self.name.split(".", 1)[0]
        return "arm64" if _GRAVITON_FAMILY.match(family) else "x86_64"


@cache
def instance_types() -> dict[str, InstanceType]:
    """Every catalogued instance type by name, in catalog order."""
    with (DATA_DIR / "instance-catalog.csv").open(newline="") as f:
        return {
            row["instance_type"]: InstanceType(
                name=row["instance_type"],
                vcpu=int(row["vcpu"]),
                memory_gib=float(row["memory_gib"]),
                max_pods=int(row["max_pods"]),
                usd_per_hour=float(row["usd_per_hour_us_east_1"]),
            )
            for row in csv.DictReader(f)
        }


def instance_type(name: str) -> InstanceType:
    """The catalog entry for `name`; KeyError naming the known types otherwise."""
    known = instance_types()
    if name not in known:
        raise KeyError(f"unknown instance type {name!r}; known: {', '.join(known)}")
    return known[name]
