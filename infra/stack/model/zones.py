"""Which availability zones the stack uses: chosen by zone ID, never by name.

Zone names (`us-east-1a`) map to physical zones differently in every account; zone IDs
(`use1-az1`) name the same physical zone everywhere. EKS refuses control-plane subnets in a
few zone IDs (EKS user guide, "Subnet requirements for clusters"; infra/stack/data/SOURCES.md),
so the choice is made on IDs, with those excluded.
"""

from __future__ import annotations

from collections.abc import Sequence

EKS_DISALLOWED_ZONE_IDS: frozenset[str] = frozenset({"use1-az3", "usw1-az2", "cac1-az3"})
"""Zone IDs whose subnets EKS refuses for a cluster (us-east-1, us-west-1, ca-central-1)."""


class ZoneSelectionError(ValueError):
    """The region offers fewer usable zones than network.azCount asks for."""


def _id_order(zone_id: str) -> tuple[str, int]:
    """use1-az2 before use1-az10."""
    prefix, _, number = zone_id.rpartition("-az")
    return (prefix, int(number)) if number.isdigit() else (zone_id, 0)


def eks_zone_ids(zone_ids: Sequence[str], count: int) -> list[str]:
    """The first `count` zone IDs, in ID order, that EKS accepts for cluster subnets.

    ID order makes the choice the same in every account (name order is not).
    """
    usable = sorted((z for z in set(zone_ids) if z not in EKS_DISALLOWED_ZONE_IDS), key=_id_order)
    if len(usable) < count:
        refused = sorted(set(zone_ids) & EKS_DISALLOWED_ZONE_IDS)
        raise ZoneSelectionError(
            f"network.azCount: {count} zones asked for, but the region has only {len(usable)} "
            f"that EKS accepts for cluster subnets ({', '.join(usable) or 'none'}; refused: "
            f"{', '.join(refused) or 'none'})"
        )
    return usable[:count]
