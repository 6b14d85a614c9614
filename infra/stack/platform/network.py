"""The VPC: public subnets for the ALB and NAT, private subnets for nodes, Redis and RDS."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from stack.config.model import NetworkConfig


@dataclass(frozen=True)
class SubnetLayout:
    private: list[str]
    public: list[str]


def subnet_layout(cidr: str, az_count: int) -> SubnetLayout:
    """Split the VPC CIDR: one large private subnet per AZ, one small public subnet per AZ.

    Pods take their IPs from the private subnets (VPC CNI), so they get 7/8 of the space:
    the VPC is cut into eighths, the first `az_count` eighths are private, and the last eighth
    is cut again into eight public subnets (ALB and NAT only need a few addresses).
    """
    vpc = ipaddress.IPv4Network(cidr)
    eighths = list(vpc.subnets(prefixlen_diff=3))
    public = list(eighths[-1].subnets(prefixlen_diff=3))
    return SubnetLayout(
        private=[str(n) for n in eighths[:az_count]],
        public=[str(n) for n in public[:az_count]],
    )


def _nth(index: int) -> Callable[[list[str]], str]:
    return lambda names: names[index]


def nat_gateway_count(config: NetworkConfig) -> int:
    return config.az_count if config.nat_gateways == "perAz" else 1


@dataclass(frozen=True)
class NetworkArgs:
    config: NetworkConfig
    availability_zone_ids: pulumi.Input[list[str]]
    """Zone IDs (not names: names differ per account), one subnet pair per zone."""
    tags: dict[str, str]


class Network(pulumi.ComponentResource):
    vpc_id: pulumi.Output[str]
    cidr: str
    public_subnet_ids: pulumi.Output[list[str]]
    private_subnet_ids: pulumi.Output[list[str]]
    private_route_table_ids: pulumi.Output[list[str]]

    def __init__(
        self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("django-eks:platform:Network", name, None, opts)
        config = args.config
        child = pulumi.ResourceOptions(parent=self)
        layout = subnet_layout(config.cidr, config.az_count)
        zones = pulumi.Output.from_input(args.availability_zone_ids)

        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=config.cidr,
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags={**args.tags, "Name": f"{name}-vpc"},
            opts=child,
        )
        igw = aws.ec2.InternetGateway(
            f"{name}-igw", vpc_id=vpc.id, tags={**args.tags, "Name": f"{name}-igw"}, opts=child
        )
        public_routes = aws.ec2.RouteTable(
            f"{name}-public",
            vpc_id=vpc.id,
            routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", gateway_id=igw.id)],
            tags={**args.tags, "Name": f"{name}-public"},
            opts=child,
        )

        public_subnets: list[aws.ec2.Subnet] = []
        private_subnets: list[aws.ec2.Subnet] = []
        for index in range(config.az_count):
            zone = zones.apply(_nth(index))
            public = aws.ec2.Subnet(
                f"{name}-public-{index}",
                vpc_id=vpc.id,
                cidr_block=layout.public[index],
                availability_zone_id=zone,
                map_public_ip_on_launch=False,
                # Internet-facing load balancers are placed in subnets with this tag.
                tags={**args.tags, "Name": f"{name}-public-{index}", "kubernetes.io/role/elb": "1"},
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-public-{index}",
                subnet_id=public.id,
                route_table_id=public_routes.id,
                opts=child,
            )
            private = aws.ec2.Subnet(
                f"{name}-private-{index}",
                vpc_id=vpc.id,
                cidr_block=layout.private[index],
                availability_zone_id=zone,
                tags={
                    **args.tags,
                    "Name": f"{name}-private-{index}",
                    "kubernetes.io/role/internal-elb": "1",
                },
                opts=child,
            )
            public_subnets.append(public)
            private_subnets.append(private)

        # One NAT per AZ keeps each AZ's egress inside that AZ (no cross-AZ data charges, no
        # single point of failure); a single NAT saves ~$33/month per AZ for dev stacks.
        nat_ids: list[pulumi.Output[str]] = []
        for index in range(nat_gateway_count(config)):
            eip = aws.ec2.Eip(
                f"{name}-nat-{index}",
                domain="vpc",
                tags={**args.tags, "Name": f"{name}-nat-{index}"},
                opts=child,
            )
            nat = aws.ec2.NatGateway(
                f"{name}-nat-{index}",
                allocation_id=eip.id,
                subnet_id=public_subnets[index].id,
                tags={**args.tags, "Name": f"{name}-nat-{index}"},
                opts=pulumi.ResourceOptions(parent=self, depends_on=[igw]),
            )
            nat_ids.append(nat.id)

        private_route_tables: list[aws.ec2.RouteTable] = []
        for index, private in enumerate(private_subnets):
            routes = aws.ec2.RouteTable(
                f"{name}-private-{index}",
                vpc_id=vpc.id,
                routes=[
                    aws.ec2.RouteTableRouteArgs(
                        cidr_block="0.0.0.0/0", nat_gateway_id=nat_ids[index % len(nat_ids)]
                    )
                ],
                tags={**args.tags, "Name": f"{name}-private-{index}"},
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{index}",
                subnet_id=private.id,
                route_table_id=routes.id,
                opts=child,
            )
            private_route_tables.append(routes)

        self.vpc_id = vpc.id
        self.private_route_table_ids = pulumi.Output.all(*[t.id for t in private_route_tables])
        self.cidr = config.cidr
        self.public_subnet_ids = pulumi.Output.all(*[s.id for s in public_subnets])
        self.private_subnet_ids = pulumi.Output.all(*[s.id for s in private_subnets])
        self.register_outputs(
            {
                "vpcId": self.vpc_id,
                "publicSubnetIds": self.public_subnet_ids,
                "privateSubnetIds": self.private_subnet_ids,
            }
        )

