"""The registry (stack/platform/registry.py): the service's repository scans and expires untagged
images; the web pod's nginx comes by digest through the stack's ECR pull-through cache of ECR Public.

Docker Hub limits anonymous pulls per source IP, and every node behind one NAT gateway is one
IP: a scale-out could stop at ErrImagePull. The sidecar now comes from the account's private
registry, `<account>.dkr.ecr.<region>.amazonaws.com/<prefix>/<upstream repository>`, through a
pull-through cache rule for Amazon ECR Public (`public.ecr.aws`, no upstream credentials;
https://docs.aws.amazon.com/AmazonECR/latest/userguide/pull-through-cache-working-pulling.html),
pinned by the digest of its multi-arch index, which amd64 and arm64 (Graviton) nodes resolve
each to their own image.

A node's first pull of an image creates the cached repository and imports the image with the
node role's permissions: `ecr:CreateRepository` (if the repository does not exist) and
`ecr:BatchImportUpstreamImage`, in addition to the pull permissions
(https://docs.aws.amazon.com/AmazonECR/latest/userguide/pull-through-cache-iam.html).
`ecrRepositoryPrefix` is 2-30 characters of lowercase letters, digits and `._-/` separators, one
rule per prefix per registry (CreatePullThroughCacheRule,
https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_CreatePullThroughCacheRule.html).
"""

from __future__ import annotations

import json
import re

import pytest

from stack.tools.offline import ACCOUNT_ID, OfflineRun
from stack.platform.registry import pull_through_prefix
from stack.workloads import proxy
from tests.infra.support.iam_evaluator import Request, evaluate
from stack.config.rules import StackConfigError, parse_stack_config
from tests.infra.support.stack_files import STACKS, run_edited, stack_run

PREFIX_PATTERN = re.compile(r"(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*")
IMPORT_ACTIONS = ("ecr:BatchImportUpstreamImage", "ecr:CreateRepository")


def proxy_image_of(run: OfflineRun) -> str:
    web = run.named("kubernetes:apps/v1:Deployment", "app-web")
    (sidecar,) = [c for c in web.inputs["spec"]["template"]["spec"]["containers"] if c["name"] == proxy.PROXY]
    return str(sidecar["image"])


def cache_rule(run: OfflineRun) -> dict[str, str]:
    (rule,) = run.of_type("aws:ecr/pullThroughCacheRule:PullThroughCacheRule")
    assert rule.delete_before_replace, "an account-unique prefix: replaced delete-first"
    return rule.inputs


def node_identity_policies(run: OfflineRun) -> list[dict[str, object]]:
    """The node role's inline policies (its managed ones grant no pull-through actions)."""
    role = run.named("aws:iam/role:Role", "eks-node")
    return [
        json.loads(p.inputs["policy"])
        for p in run.of_type("aws:iam/rolePolicy:RolePolicy")
        if p.inputs["role"] == role.outputs.get("id", role.urn) or role.urn in p.dependencies
    ]


@pytest.mark.parametrize("stack", STACKS)
def test_the_sidecar_is_pulled_by_digest_from_the_stacks_own_registry(stack: str) -> None:
    run = stack_run(stack)
    image = proxy_image_of(run)
    host = f"{ACCOUNT_ID}.dkr.ecr.{run.region}.amazonaws.com"
    rule = cache_rule(run)
    assert rule["upstreamRegistryUrl"] == "public.ecr.aws"
    assert image == (
        f"{host}/{rule['ecrRepositoryPrefix']}/docker/library/nginx:{proxy.PROXY_TAG}@{proxy.PROXY_DIGEST}"
    )
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", proxy.PROXY_DIGEST)
    # The same registry as the app image's repository.
    (repository,) = run.of_type("aws:ecr/repository:Repository")
    assert repository.outputs["repositoryUrl"].split("/", 1)[0] == host


@pytest.mark.parametrize("stack", STACKS)
def test_nodes_may_fill_the_cache_and_nothing_else(stack: str) -> None:
    run = stack_run(stack)
    prefix = cache_rule(run)["ecrRepositoryPrefix"]
    policies = node_identity_policies(run)
    repository = f"arn:aws:ecr:{run.region}:{ACCOUNT_ID}:repository"
    cached = f"{repository}/{prefix}/docker/library/nginx"
    for action in IMPORT_ACTIONS:
        assert evaluate(Request(action, cached), identity_policies=policies) == "allowed", action
        for elsewhere in (
            f"{repository}/other-ecr-public/docker/library/nginx",  # another stack's cache
            f"{repository}/{prefix}-x/nginx",  # a lookalike prefix
            f"{repository}/service-0a1b2c3",  # the app's own repository
            f"arn:aws:ecr:eu-west-1:{ACCOUNT_ID}:repository/{prefix}/docker/library/nginx",
            f"arn:aws:ecr:{run.region}:210987654321:repository/{prefix}/docker/library/nginx",
        ):
            assert evaluate(Request(action, elsewhere), identity_policies=policies) != "allowed", (action, elsewhere)
    # No other ECR write slipped in.
    for action in ("ecr:PutImage", "ecr:DeleteRepository", "ecr:CreatePullThroughCacheRule"):
        assert evaluate(Request(action, cached), identity_policies=policies) != "allowed", action


@pytest.mark.parametrize(
    "stack", ["dev", "prod", "exp-c5-workers", "a-very-long-stack-name-for-a-feature-branch", "Feature_X"]
)
def test_the_cache_prefix_is_a_valid_prefix_of_its_own_stack(stack: str) -> None:
    prefix = pull_through_prefix(stack)
    assert 2 <= len(prefix) <= 30
    assert PREFIX_PATTERN.fullmatch(prefix), prefix
    assert pull_through_prefix(stack) == prefix
    assert pull_through_prefix(stack + "2") != prefix


def test_two_stacks_of_one_account_get_different_prefixes() -> None:
    assert len({pull_through_prefix(s) for s in STACKS}) == len(STACKS)


def test_image_registry_scans_on_push_and_expires_untagged_images() -> None:
    run = stack_run("dev")
    repo = run.named("aws:ecr/repository:Repository", "service").inputs
    assert repo["imageScanningConfiguration"] == {"scanOnPush": True}
    assert repo["imageTagMutability"] == "IMMUTABLE"
    policy = json.loads(run.named("aws:ecr/lifecyclePolicy:LifecyclePolicy", "service-lifecycle").inputs["policy"])
    assert {rule["selection"]["tagStatus"] for rule in policy["rules"]} == {"untagged"}


DIGEST = "sha256:" + "ab" * 32


def test_an_image_by_digest_runs_as_given_without_a_tag() -> None:
    def by_digest(raw: dict[str, object]) -> None:
        image = raw["django-eks:image"]
        assert isinstance(image, dict)
        image.pop("tag")
        image["repository"] = "111122223333.dkr.ecr.us-east-1.amazonaws.com/notes"
        image["digest"] = DIGEST

    # No tag in the registry to resolve: the digest is what the pods run.
    run = run_edited(by_digest, base="exp-example", registry_tags=[])
    assert run.outputs["image"] == f"111122223333.dkr.ecr.us-east-1.amazonaws.com/notes@{DIGEST}"
    web = run.named("kubernetes:apps/v1:Deployment", "app-web")
    assert web.inputs["spec"]["template"]["spec"]["containers"][0]["image"] == run.outputs["image"]


def test_a_tag_and_a_digest_together_are_refused() -> None:
    with pytest.raises(StackConfigError, match="image.digest"):
        parse_stack_config({"image": {"tag": "0.1.0", "digest": DIGEST}})
    with pytest.raises(StackConfigError, match="image.digest"):
        parse_stack_config({"image": {"digest": "sha256:short"}})
