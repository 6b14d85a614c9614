"""What the tests ask of the network the program registers: subnets and security group rules."""

from __future__ import annotations

from stack.tools.offline import OfflineRun

SUBNET = "aws:ec2/subnet:Subnet"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"


def subnet_ids(run: OfflineRun, kind: str) -> set[str]:
    """The ids the mock engine gives the `kind` ("private" or "public") subnets."""
    return {f"{r.name}-placeholder-id" for r in run.of_type(SUBNET) if f"-{kind}-" in r.name}


def ingress_of(run: OfflineRun, group: str) -> list[tuple[int, int, str]]:
    """(from port, to port, source group) of each ingress rule of the security group `group`."""
    rules = [r for r in run.of_type(INGRESS) if r.inputs["securityGroupId"] == f"{group}-placeholder-id"]
    return [(r.inputs["fromPort"], r.inputs["toPort"], r.inputs["referencedSecurityGroupId"]) for r in rules]
