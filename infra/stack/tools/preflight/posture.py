"""Plan warnings for a stack that is valid but exposed: plain HTTP, an API endpoint open to all,
the load-test endpoint on."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

from stack.config.model import StackConfig
from stack.config.rules import ConfigProblem


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
    if config.web.load_test_endpoint:
        warnings.append(
            ConfigProblem(
                "web.loadTestEndpoint",
                "true: GET /api/io lets any client hold a request thread for up to 5 s per call; "
                "keep it to experiment stacks",
            )
        )
    if config.app is not None and config.app.encrypted_secrets:
        warnings.append(
            ConfigProblem(
                "app.secrets",
                f"{', '.join(config.app.encrypted_secrets)}: encrypted in the stack file (secure:), which "
                "this offline plan cannot decrypt (only the Pulumi engine, with the stack's secrets "
                "provider, can): the app's Secret is rendered with a placeholder for each",
            )
        )
    warnings += list(_examples_left(config))
    warnings += list(_deploy_runner_reach(config))
    return warnings


def _deploy_runner_reach(config: StackConfig) -> Iterator[ConfigProblem]:
    """A GitHub-hosted deploy runner against an API endpoint it cannot reach: such a runner is
    outside the VPC, and its egress address is any of GitHub's shared, changing ranges."""
    cluster, deploy = config.cluster, config.deploy
    if not deploy.github_hosted:
        return
    runner = deploy.runner[0]
    if not cluster.endpoint_public_access:
        yield ConfigProblem(
            "deploy.runner",
            f"{runner} is a GitHub-hosted runner, outside the VPC, and cluster.endpointPublicAccess "
            "is false: the deploy cannot reach the Kubernetes API; name a self-hosted runner "
            "that reaches the cluster's private endpoint (docs/deploy.md, Where the deploy runs)",
        )
    elif not any(ipaddress.IPv4Network(c).prefixlen == 0 for c in cluster.public_access_cidrs):
        yield ConfigProblem(
            "deploy.runner",
            f"{runner} is a GitHub-hosted runner with no stable egress address, and "
            f"cluster.publicAccessCidrs allowlists {', '.join(cluster.public_access_cidrs)}: the "
            "deploy cannot reach the Kubernetes API; name a runner with fixed egress addresses "
            "listed there (docs/deploy.md, Where the deploy runs)",
        )


EXAMPLE_ACCOUNT = "111122223333"
"""The account ID AWS documentation uses in examples; Pulumi.prod.yaml ships with it."""
DOCUMENTATION_NETWORKS = [ipaddress.IPv4Network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")]
"""RFC 5737: reserved for documentation, routed nowhere."""


def _examples_left(config: StackConfig) -> Iterator[ConfigProblem]:
    """The example values a stack file ships with, still in place."""
    certificate = config.load_balancer.certificate_arn
    if certificate is not None and certificate.split(":")[4] == EXAMPLE_ACCOUNT:
        yield ConfigProblem(
            "loadBalancer.certificateArn",
            f"is the example ARN (account {EXAMPLE_ACCOUNT}); replace it with your certificate's, "
            "or `pulumi up` fails on the HTTPS listener",
        )
    domain = config.load_balancer.domain_name
    if domain is not None and _is_example_domain(domain):
        yield ConfigProblem(
            "loadBalancer.domainName",
            f"{domain} is a name reserved for documentation (RFC 2606); replace it with the "
            "app's domain, the one the certificate covers, or clients cannot reach the app",
        )
    if config.cluster.endpoint_public_access:
        examples = [
            c for c in config.cluster.public_access_cidrs
            if any(ipaddress.IPv4Network(c).subnet_of(n) for n in DOCUMENTATION_NETWORKS)
        ]
        if examples:
            yield ConfigProblem(
                "cluster.publicAccessCidrs",
                f"{', '.join(examples)} is a documentation range (RFC 5737) that nobody deploys from; "
                "replace it with the CIDRs of your deployers and CI runners",
            )


def _is_example_domain(domain: str) -> bool:
    """Under example.com/.net/.org or the .example, .test, .invalid, .localhost TLDs (RFC 2606)."""
    labels = domain.split(".")
    return labels[-1] in {"example", "test", "invalid", "localhost"} or (
        labels[-2:] in (["example", "com"], ["example", "net"], ["example", "org"])
    )
