"""The app's manifests rendered offline for a stack config, and ways to look into them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from config import launch
from stack.config.model import StackConfig
from stack.config.workers import worker_deployments
from stack.tools.offline import S3_PREFIX_LIST_CIDRS
from stack.workloads import proxy
from stack.workloads.manifests import rendered_manifests

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/django-eks:0.1.0"
PROXY_IMAGE = proxy.proxy_image("123456789012.dkr.ecr.us-east-1.amazonaws.com", "dev-ecr-public")
ALB_DNS = "django-eks-alb-1234567890.us-east-1.elb.amazonaws.com"
TARGET_GROUP_ARN = (
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/django-eks-web/0123456789abcdef"
)


def render(config: StackConfig, app_url: str | None = None) -> list[dict[str, Any]]:
    return rendered_manifests(
        config,
        image=IMAGE,
        proxy_image=PROXY_IMAGE,
        alb_dns_name=ALB_DNS,
        app_url=app_url or f"http://{ALB_DNS}",
        target_group_arn=TARGET_GROUP_ARN,
        s3_cidrs=list(S3_PREFIX_LIST_CIDRS),
    )


def find(manifests: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    matches = [
        o for o in manifests if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)
    ]
    assert len(matches) == 1, f"expected one {kind} {name or ''}, found {len(matches)}"
    return matches[0]


def pod_specs(manifests: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """The pod spec of every Deployment, StatefulSet, Job and CronJob, by the object's name."""
    for o in manifests:
        if o["kind"] in ("Deployment", "StatefulSet", "Job"):
            yield o["metadata"]["name"], o["spec"]["template"]["spec"]
        elif o["kind"] == "CronJob":
            yield o["metadata"]["name"], o["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def option(command: list[str], flag: str) -> str:
    """A flag's value, given as `--flag value` or `--flag=value`."""
    for i, arg in enumerate(command):
        if arg == flag:
            return command[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    raise ValueError(f"{flag} not in {command}")


def literal_env(container: dict[str, Any]) -> dict[str, str]:
    """A rendered container's literal `env` values (not those from the downward API)."""
    return {item["name"]: item["value"] for item in container.get("env", []) if "value" in item}


def launched(container: dict[str, Any]) -> list[str]:
    """The command line the image's launcher builds from a rendered container's command and env."""
    assert container["command"][:3] == ["python", "-m", "config.launch"]
    process, *extra = container["command"][3:]
    env = literal_env(container)
    return launch.command(process, env, extra)


def server_settings(command: list[str], server: str) -> dict[str, str]:
    """What a web server's command line sets, under one name per setting whatever its flags
    (service/config/launch.py): processes, threads, keep-alive and graceful seconds, bind."""
    if server == "granian":
        return {"processes": option(command, "--workers"), "threads": option(command, "--blocking-threads"),
                "keep_alive": str(int(option(command, "--http1-header-read-timeout")) // 1000),
                "graceful": option(command, "--workers-kill-timeout"),
                "bind": f"{option(command, '--host')}:{option(command, '--port')}"}
    if server == "uwsgi":
        return {"processes": option(command, "--processes"), "threads": option(command, "--threads"),
                "keep_alive": option(command, "--http-keepalive"), "graceful": option(command, "--worker-reload-mercy"),
                "bind": option(command, "--http")}
    return {"processes": option(command, "--workers"), "threads": option(command, "--threads"),
            "keep_alive": option(command, "--keep-alive"), "graceful": option(command, "--graceful-timeout"),
            "bind": option(command, "--bind")}


GRANIAN_LOAD_BALANCER = {"idleTimeoutSeconds": 55}
"""An ALB idle timeout granian's keep-alive (at most 60 s) can exceed."""


def cluster_version(config: StackConfig) -> str:
    """The Kubernetes version kubernetes_validate checks the stack's objects against."""
    return f"{config.cluster.version}.0"


def worker_names(config: StackConfig) -> list[str]:
    """The names of the stack's worker Deployments (`worker`, or `worker-<key>` of `workers`)."""
    return [d.name for d in worker_deployments(config)]
