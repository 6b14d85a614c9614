"""The Application Load Balancer, its listeners and the IP target group of the web pods.

The ALB lives in Pulumi state (not behind an Ingress), so it shows in preview diffs and is
destroyed deterministically; the AWS Load Balancer Controller only registers pod IPs into
the target group through a TargetGroupBinding (see stack.workloads).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from stack.config.model import LoadBalancerConfig
from stack.platform.security_groups import security_group, tcp_rule

APP_PORT = 8000
"""The port the web server binds in the web pods (WEB_BIND, runtime/django_eks_runtime/launch.py)."""

HEALTH_CHECK_PATH = "/healthz"
TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09"
"""The policy AWS recommends for HTTPS listeners (TLS 1.3 and 1.2 with restricted ciphers, hybrid
post-quantum key exchange); the API's default is still ELBSecurityPolicy-2016-08. Source:
https://docs.aws.amazon.com/elasticloadbalancing/latest/application/describe-ssl-policies.html"""


def listener_specs(config: LoadBalancerConfig) -> list[dict[str, Any]]:
    """The listeners: HTTPS with an HTTP redirect when a certificate is set, else plain HTTP.

    Each spec is (port, protocol, certificate, action) with action "forward" or "redirect".
    """
    if config.certificate_arn is None:
        return [{"port": 80, "protocol": "HTTP", "certificate_arn": None, "action": "forward"}]
    return [
        {
            "port": 443,
            "protocol": "HTTPS",
            "certificate_arn": config.certificate_arn,
            "action": "forward",
        },
        {"port": 80, "protocol": "HTTP", "certificate_arn": None, "action": "redirect"},
    ]


IP_ADDRESS_TYPE = "ipv4"
"""The ALB's address family (the API's default, said explicitly): its alias records follow it."""


def alias_record_types(ip_address_type: str) -> list[str]:
    """The Route 53 alias records a domain needs to reach every address of the ALB.

    An alias A record answers with the ALB's IPv4 addresses, an alias AAAA record with its
    IPv6 addresses, which only a dualstack ALB has:
    https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/routing-to-elb-load-balancer.html
    """
    return ["A", "AAAA"] if ip_address_type.startswith("dualstack") else ["A"]


def app_url(config: LoadBalancerConfig, alb_dns_name: str) -> str:
    """Where clients reach the app: the configured domain (the name the certificate covers),
    else the ALB's own name; https when the ALB has a certificate."""
    scheme = "http" if config.certificate_arn is None else "https"
    return f"{scheme}://{config.domain_name or alb_dns_name}"


TARGET_GROUP: dict[str, Any] = {"port": APP_PORT, "protocol": "HTTP", "target_type": "ip"}
"""The target group's inputs that replace it when they change (as do its VPC and name): the
API changes only health checks and attributes in place (ModifyTargetGroup,
https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_ModifyTargetGroup.html;
ModifyTargetGroupAttributes), so the provider replaces the group for anything else."""

STANDBY_PORT = 8080
"""A listener on this port forwards to the target group, so the ALB health-checks a group from
its creation: targets of a group no load balancer uses stay "unused" (Target.NotInUse) and are
never checked (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/target-group-health-checks.html),
so a new group could never become healthy before the public listeners switch to it. The ALB's
security group does not open the port: nobody reaches it."""


BOUND_AS_WEB: dict[str, Any] = {"port": 8000, "protocol": "HTTP", "target_type": "ip"}
"""The group stacks were deployed with while the binding had the fixed name "web"."""


def target_group_binding_name(target_group: dict[str, Any]) -> str:
    """The TargetGroupBinding's name, new whenever the target group is replaced.

    A replaced target group gets a binding of another name, created beside the old one (which
    keeps the old group's targets registered until the public listeners have switched). The
    controller's webhook refuses two bindings of one group (webhooks/elbv2/
    targetgroupbinding_validator.go, checkExistingTargetGroups), so the group every stack has
    had so far keeps the name "web" its binding already has.
    """
    if target_group == BOUND_AS_WEB:
        return "web"
    digest = hashlib.sha256(json.dumps(target_group, sort_keys=True).encode()).hexdigest()[:8]
    return f"web-{digest}"


def public_ports(config: LoadBalancerConfig) -> list[int]:
    return sorted(spec["port"] for spec in listener_specs(config))


@dataclass(frozen=True)
class LoadBalancerArgs:
    config: LoadBalancerConfig
    vpc_id: pulumi.Input[str]
    public_subnet_ids: pulumi.Input[list[str]]
    target_security_group_id: pulumi.Input[str]
    """The security group of the pods (EKS's cluster security group, carried by every node)."""
    deregistration_delay_seconds: int
    tags: dict[str, str]
    health_check_path: str = HEALTH_CHECK_PATH
    """The app's health path (app.healthPath); the demo's is /healthz. A change is made in place
    (ModifyTargetGroup), the target group is kept."""


class LoadBalancer(pulumi.ComponentResource):
    dns_name: pulumi.Output[str]
    binding_name: str
    """The name of the TargetGroupBinding of the current target group."""
    url: pulumi.Output[str]
    arn: pulumi.Output[str]
    target_group_arn: pulumi.Output[str]
    arn_suffix: pulumi.Output[str]
    """`app/<name>/<id>`: the ALB's LoadBalancer dimension in CloudWatch."""
    target_group_arn_suffix: pulumi.Output[str]
    """`targetgroup/<name>/<id>`: the TargetGroup dimension in CloudWatch."""
    security_group_id: pulumi.Output[str]

    def __init__(
        self, name: str, args: LoadBalancerArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("django-eks:platform:LoadBalancer", name, None, opts)
        config = args.config
        child = pulumi.ResourceOptions(parent=self)

        alb_group = security_group(
            f"{name}-alb",
            description="ALB: HTTP(S) from the internet, the app port toward the pods",
            vpc_id=args.vpc_id,
            tags=args.tags,
            parent=self,
        )
        for port in public_ports(config):
            tcp_rule(
                aws.vpc.SecurityGroupIngressRule,
                f"{name}-alb-in-{port}",
                security_group_id=alb_group.id,
                description=f"Port {port} from the internet",
                port=port,
                cidr_ipv4="0.0.0.0/0",
                parent=self,
            )
        tcp_rule(
            aws.vpc.SecurityGroupEgressRule,
            f"{name}-alb-out-app",
            security_group_id=alb_group.id,
            description="To the web pods only",
            port=APP_PORT,
            referenced_security_group_id=args.target_security_group_id,
            parent=self,
        )
        tcp_rule(
            aws.vpc.SecurityGroupIngressRule,
            f"{name}-pods-in-app",
            security_group_id=args.target_security_group_id,
            description="Web pods from the ALB",
            port=APP_PORT,
            referenced_security_group_id=alb_group.id,
            parent=self,
        )

        alb = aws.lb.LoadBalancer(
            f"{name}-alb",
            load_balancer_type="application",
            internal=False,
            security_groups=[alb_group.id],
            subnets=args.public_subnet_ids,
            ip_address_type=IP_ADDRESS_TYPE,
            idle_timeout=config.idle_timeout_seconds,
            drop_invalid_header_fields=True,
            tags=args.tags,
            opts=child,
        )
        target_group = aws.lb.TargetGroup(
            f"{name}-tg",
            port=TARGET_GROUP["port"],
            protocol=TARGET_GROUP["protocol"],
            target_type=TARGET_GROUP["target_type"],
            vpc_id=args.vpc_id,
            deregistration_delay=args.deregistration_delay_seconds,
            health_check={
                # ALB health checks carry the pod IP as Host; the service answers /healthz
                # (an app its health path) before Django's host validation for that reason.
                "path": args.health_check_path,
                "port": "traffic-port",
                "protocol": "HTTP",
                "matcher": "200",
                "interval": 10,
                "timeout": 5,
                "healthy_threshold": 2,
                "unhealthy_threshold": 3,
            },
            tags=args.tags,
            opts=child,
        )
        self._name, self._config, self._tags = name, config, args.tags
        self._alb, self._target_group = alb, target_group
        self._listener(
            f"{name}-standby",
            {"port": STANDBY_PORT, "protocol": "HTTP", "certificate_arn": None, "action": "forward"},
            child,
        )

        if config.hosted_zone_id is not None and config.domain_name is not None:
            for record_type in alias_record_types(IP_ADDRESS_TYPE):
                aws.route53.Record(
                    f"{name}-domain-{record_type.lower()}",
                    zone_id=config.hosted_zone_id,
                    name=config.domain_name,
                    type=record_type,
                    aliases=[
                        aws.route53.RecordAliasArgs(
                            name=alb.dns_name, zone_id=alb.zone_id, evaluate_target_health=True
                        )
                    ],
                    opts=child,
                )

        self.binding_name = target_group_binding_name(TARGET_GROUP)
        self.arn = alb.arn
        self.dns_name = alb.dns_name
        self.url = alb.dns_name.apply(lambda dns: app_url(config, dns))
        self.target_group_arn = target_group.arn
        self.arn_suffix = alb.arn_suffix
        self.target_group_arn_suffix = target_group.arn_suffix
        self.security_group_id = alb_group.id
        self.register_outputs(
            {"dnsName": self.dns_name, "url": self.url, "targetGroupArn": self.target_group_arn}
        )

    def serve(self, *, after: Sequence[pulumi.Resource]) -> None:
        """The public listeners, forwarding to the target group once `after` is done.

        `after` is the web Deployment: its rollout ends only when every new pod is a healthy
        target (the controller's readiness gate), and a new target group rolls the pods (their
        template names the binding). Pulumi replaces the group create-before-delete: the new
        group is created, then its dependents are updated, the old group deleted last
        (pulumi/pulumi pkg/resource/deploy/step_generator.go, "CreateBeforeDelete"); a listener
        registers only once `after` has (the SDK awaits depends_on URNs before registering,
        sdk/python/lib/pulumi/runtime/resource.py). So the listeners switch to a group that has
        healthy targets, and the old group keeps its targets until then.
        """
        config, name = self._config, self._name
        child = pulumi.ResourceOptions(parent=self, depends_on=list(after))
        for spec in listener_specs(config):
            self._listener(
                f"{name}-{spec['protocol'].lower()}",
                spec,
                child if spec["action"] == "forward" else pulumi.ResourceOptions(parent=self),
            )

    def _listener(self, resource_name: str, spec: dict[str, Any], opts: pulumi.ResourceOptions) -> None:
        """A listener of a `listener_specs` spec: forward to the target group, or redirect to HTTPS."""
        if spec["action"] == "forward":
            action = aws.lb.ListenerDefaultActionArgs(type="forward", target_group_arn=self._target_group.arn)
        else:
            action = aws.lb.ListenerDefaultActionArgs(
                type="redirect",
                redirect=aws.lb.ListenerDefaultActionRedirectArgs(port="443", protocol="HTTPS", status_code="HTTP_301"),
            )
        aws.lb.Listener(
            resource_name,
            load_balancer_arn=self._alb.arn,
            port=spec["port"],
            protocol=spec["protocol"],
            certificate_arn=spec["certificate_arn"],
            ssl_policy=TLS_POLICY if spec["protocol"] == "HTTPS" else None,
            default_actions=[action],
            tags=self._tags,
            opts=opts,
        )
