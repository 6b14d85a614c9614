"""The network (stack/platform/network.py): subnets that fit the VPC, NAT gateways as configured,
the tags load balancers discover subnets by."""

from __future__ import annotations

import ipaddress

import pytest

from stack.platform.network import subnet_layout
from tests.infra.support.network import SUBNET
from tests.infra.support.stack_files import stack_run


def test_subnet_layout_fits_the_vpc_and_gives_pods_most_addresses() -> None:
    layout = subnet_layout("10.20.0.0/16", 3)
    vpc = ipaddress.IPv4Network("10.20.0.0/16")
    nets = [ipaddress.IPv4Network(c) for c in layout.private + layout.public]
    assert all(n.subnet_of(vpc) for n in nets)
    assert not any(a.overlaps(b) for i, a in enumerate(nets) for b in nets[i + 1 :])
    assert [n.num_addresses for n in nets[:3]] == [8192] * 3


@pytest.mark.parametrize(("stack", "nats"), [("dev", 1), ("prod", 3)])
def test_nat_layout_follows_config(stack: str, nats: int) -> None:
    run = stack_run(stack)
    assert len(run.of_type("aws:ec2/natGateway:NatGateway")) == nats
    assert len(run.of_type("aws:ec2/eip:Eip")) == nats
    routes = [r for r in run.of_type("aws:ec2/routeTable:RouteTable") if "-private-" in r.name]
    assert len(routes) == run.config.network.az_count
    assert len({r.inputs["routes"][0]["natGatewayId"] for r in routes}) == nats


def test_subnets_carry_the_tags_load_balancers_discover() -> None:
    run = stack_run("dev")
    for subnet in run.of_type(SUBNET):
        role = "kubernetes.io/role/elb" if "-public-" in subnet.name else "kubernetes.io/role/internal-elb"
        assert subnet.inputs["tags"][role] == "1"
        assert subnet.inputs.get("mapPublicIpOnLaunch") in (None, False)
