"""Plan warnings for a stack that is valid but exposed: plain HTTP, an API endpoint open to all."""

from __future__ import annotations

import ipaddress

from stack.config import ConfigProblem, StackConfig


def posture_warnings(config: StackConfig) -> list[ConfigProblem]:
    warnings: list[ConfigProblem] = []
    if config.load_balancer.certificate_arn is None:
        warnings.append(
            ConfigProblem(
                "loadBalancer.certificateArn",
                "not set: the load balancer serves plain HTTP on port 80; set an ACM certificate ARN "
                "(same region) to serve HTTPS on 443 and redirect HTTP to it",
            )
        )
    cluster = config.cluster
    open_to_all = [c for c in cluster.public_access_cidrs if ipaddress.IPv4Network(c).prefixlen == 0]
    if cluster.endpoint_public_access and open_to_all:
        warnings.append(
            ConfigProblem(
                "cluster.publicAccessCidrs",
                f"{', '.join(open_to_all)} leaves the Kubernetes API endpoint open to the whole "
                "internet; list the CIDRs of the people and CI runners that deploy, or set "
                "cluster.endpointPublicAccess: false",
            )
        )
    return warnings
