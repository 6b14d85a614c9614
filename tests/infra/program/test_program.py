"""The whole program, run for every stack file the way the Pulumi CLI runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from stack.tools.offline import REPO_ROOT, is_secret, pulumi_config_of
from tests.infra.support.stack_files import STACKS, stack_run

# The CLI's Python language host runs `runpy.run_path(<main>, run_name="__main__")` from the
# project root, with the stack's config in PULUMI_CONFIG. This driver does the same in a fresh
# interpreter, with the project's own path entries removed so that imports resolve only the way
# they would under the CLI.
DRIVER = textwrap.dedent(
    """
    import json, os, runpy, sys
    infra = os.path.realpath("infra")
    sys.path[:] = [p for p in sys.path if os.path.realpath(p or ".") not in (infra, os.getcwd())]
    import pulumi

    class Mocks(pulumi.runtime.Mocks):
        def new_resource(self, args):
            state = dict(args.inputs)
            state.setdefault("arn", "arn:aws:mock:us-east-1:123456789012:" + args.name)
            state.setdefault("name", args.name)
            state.setdefault("latestVersion", 1)
            state.setdefault("dnsName", "mock.elb.amazonaws.com")
            state.setdefault("result", "mocksecretvalue0123456789")
            # A Prometheus workspace's endpoint (AMP always answers it, ending with a slash).
            state.setdefault("prometheusEndpoint", "https://aps-workspaces.us-east-1.amazonaws.com/workspaces/ws-mock/")
            state.setdefault("certificateAuthority", {"data": "bW9jaw=="})
            state.setdefault("resources", [{"autoscalingGroups": [{"name": "eks-mock-asg"}]}])
            # A replication group's nodes (ElastiCache always answers them): the cache alarms' dimension.
            state.setdefault("memberClusters", ["mock-%03d" % n for n in range(1, 7)])
            state["vpcConfig"] = {**state.get("vpcConfig", {}), "clusterSecurityGroupId": "sg-1"}
            return args.name + "-id", state

        def call(self, args):
            tag = json.loads(json.loads(os.environ["PULUMI_CONFIG"])["django-eks:image"])["tag"]
            return {"names": ["us-east-1a", "us-east-1b", "us-east-1c"],
                    "zoneIds": ["use1-az1", "use1-az2", "use1-az4"],
                    "imageIds": [{"imageTag": tag, "imageDigest": "sha256:" + "0" * 64}],
                    "cidrBlocks": ["52.216.0.0/15"],
                    "arn": "arn:aws:sts::123456789012:assumed-role/deployer/s",
                    "issuerArn": "arn:aws:iam::123456789012:role/deployer"}

    registered = []
    class Monitor(pulumi.runtime.mocks.MockMonitor):
        def RegisterResource(self, request):
            registered.append(request.type)
            return super().RegisterResource(request)

    mocks = Mocks()
    pulumi.runtime.set_mocks(mocks, project="django-eks", stack=sys.argv[1], preview=False,
                             monitor=Monitor(mocks))
    from pulumi.runtime.stack import run_pulumi_func
    from pulumi.runtime.sync_await import _sync_await
    root = pulumi.runtime.settings.get_root_resource()
    _sync_await(run_pulumi_func(lambda: runpy.run_path("infra", run_name="__main__")))
    print(json.dumps({"exports": sorted(root.outputs), "types": registered}))
    """
)


@pytest.mark.parametrize("stack", STACKS)
def test_program_starts_as_the_pulumi_cli_starts_it(stack: str, tmp_path: Path) -> None:
    driver = tmp_path / "language_host.py"
    driver.write_text(DRIVER)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PULUMI_CONFIG")}
    env["PULUMI_CONFIG"] = json.dumps(pulumi_config_of(stack))
    result = subprocess.run(
        [sys.executable, str(driver), stack],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert {"clusterName", "kubeconfig", "albDnsName", "appUrl", "namespace"} <= set(report["exports"])
    assert "aws:eks/cluster:Cluster" in report["types"]
    assert "kubernetes:apps/v1:Deployment" in report["types"]


@pytest.mark.parametrize("stack", STACKS)
def test_stack_outputs(stack: str) -> None:
    run = stack_run(stack)
    outputs = run.outputs
    assert outputs["clusterName"] == f"django-eks-{stack}"
    assert outputs["appUrl"].startswith(("http://", "https://"))
    # The app's domain when the stack names one (the certificate's), else the ALB's own name.
    host = run.config.load_balancer.domain_name or outputs["albDnsName"]
    assert outputs["appUrl"] in (f"http://{host}", f"https://{host}")
    assert set(outputs["nodePoolNames"]) == set(run.config.node_pools)
    assert "kubeconfig" in run.secret_outputs
    kubeconfig = json.loads(outputs["kubeconfig"])
    assert kubeconfig["users"][0]["user"]["exec"]["command"] == "aws"


@pytest.mark.parametrize("stack", STACKS)
def test_no_credential_appears_in_a_plain_output(stack: str) -> None:
    run = stack_run(stack)
    password = run.named("aws:rds/instance:Instance", "postgres").inputs["password"]
    token = run.named("aws:elasticache/replicationGroup:ReplicationGroup", "redis").inputs["authToken"]
    assert is_secret(password) and is_secret(token)
    plain = json.dumps({k: v for k, v in run.outputs.items() if k not in run.secret_outputs})
    assert run.outputs["databaseEndpoint"] in plain
    for credential in (password["value"], token["value"]):
        assert len(credential) >= 32
        assert credential not in plain
