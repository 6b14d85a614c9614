"""From a commit to running pods: the image by digest, the registry's lifecycle, platforms."""

from __future__ import annotations

import json
from typing import Any

import pytest

from stack.config.rules import StackConfigError, parse_stack_config
from stack.tools.offline import image_digest, pulumi_config_of, run_program
from stack.platform.registry import lifecycle_policy
from stack.platform.registry import ImageNotFoundError, digest_for_tag, parse_ecr_url
from stack.tools.release.image import image_platforms
from tests.infra.support.configs import small_config, split_pools_config
from tests.infra.support.manifests import worker_names
from tests.infra.support.stack_files import STACKS, stack_run


def pod_images(resources: list[Any]) -> dict[str, str]:
    images = {}
    for r in resources:
        if r.type in ("kubernetes:apps/v1:Deployment", "kubernetes:apps/v1:StatefulSet", "kubernetes:batch/v1:Job"):
            # The app container (the web pod's nginx proxy runs its own pinned image).
            (container,) = [c for c in r.inputs["spec"]["template"]["spec"]["containers"] if c["name"] != "proxy"]
            images[r.name] = container["image"]
        elif r.type == "kubernetes:batch/v1:CronJob":
            (container,) = r.inputs["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
            images[r.name] = container["image"]
    return images


@pytest.mark.parametrize("stack", STACKS)
def test_pods_run_the_configured_tag_by_its_digest(stack: str) -> None:
    run = stack_run(stack)
    repository = run.outputs["imageRepositoryUrl"]
    name = repository.split("/", 1)[1]
    expected = f"{repository}@{image_digest(name, run.config.image.tag)}"
    images = pod_images(run.resources)
    config = run.config
    assert set(images) == {
        "app-web", "app-migrate",
        *(["app-reconciler"] if config.app is None else []),
        *(f"app-{name}" for name in worker_names(config)),
        *(["app-beat"] if config.beat else []),
        *(f"app-cron-{key}" for key in config.cron_jobs),
    }  # fmt: skip
    assert set(images.values()) == {expected}
    assert run.outputs["image"] == expected
    assert run.outputs["imageTag"] == run.config.image.tag


def test_a_new_image_under_a_new_tag_rolls_and_migrates_once() -> None:
    config = pulumi_config_of("dev")
    image = json.loads(config["django-eks:image"])
    config["django-eks:image"] = json.dumps({**image, "tag": "3f2a9c1"})
    run = run_program(config, stack="dev", registry_tags=["0.1.0", "3f2a9c1"])
    images = set(pod_images(run.resources).values())
    (reference,) = images
    assert reference.endswith("@" + image_digest(reference.split("/", 1)[1].split("@")[0], "3f2a9c1"))
    job = run.of_type("kubernetes:batch/v1:Job")[0].inputs
    old_job = stack_run("dev").of_type("kubernetes:batch/v1:Job")[0].inputs
    assert job["metadata"]["name"] != old_job["metadata"]["name"]


def test_a_tag_missing_from_the_registry_stops_the_deploy_with_a_clear_error() -> None:
    with pytest.raises(Exception) as error:
        run_program(pulumi_config_of("dev"), stack="dev", registry_tags=["0.0.9"])
    message = str(error.value)
    assert "image tag '0.1.0' is not in the ECR repository" in message
    assert "push it first" in message


def test_a_preview_before_the_push_shows_the_tag() -> None:
    # The pull-request preview of a stack whose tag is not pushed yet still completes.
    run = run_program(pulumi_config_of("dev"), stack="dev", registry_tags=[], preview=True)
    images = set(pod_images(run.resources).values())
    assert images == {run.outputs["imageRepositoryUrl"] + ":0.1.0"}


def test_without_a_tag_only_the_platform_and_the_registry_are_registered() -> None:
    # A new stack's first step: nothing to resolve, nothing of the app, the registry there.
    config = pulumi_config_of("dev")
    image = json.loads(config["django-eks:image"])
    del image["tag"]
    config["django-eks:image"] = json.dumps(image)
    run = run_program(config, stack="dev", registry_tags=[])
    kubernetes = [r for r in run.resources if r.type.startswith("kubernetes:") and "providers" not in r.type]
    # The platform's own charts (the autoscalers) and the preview principal's guard and grants
    # are there; nothing of the app is.
    assert kubernetes and all("Autoscalers" in r.parent or "PreviewAccess" in r.parent for r in kubernetes)
    assert not run.of_type("django-eks:app:Workloads")
    assert run.of_type("aws:ecr/repository:Repository")
    assert run.of_type("aws:eks/cluster:Cluster")
    assert run.outputs["imageTag"] is None and "image" not in run.outputs


def test_digest_lookup_ignores_untagged_images_and_other_tags() -> None:
    images = [(None, "sha256:" + "1" * 64), ("v1", "sha256:" + "2" * 64), ("v2", "sha256:" + "3" * 64)]
    assert digest_for_tag(images, "v2", "repo") == "sha256:" + "3" * 64
    with pytest.raises(ImageNotFoundError, match="'v3'"):
        digest_for_tag(images, "v3", "repo")


def test_an_image_repository_must_be_ecr() -> None:
    with pytest.raises(StackConfigError) as error:
        parse_stack_config({"image": {"repository": "ghcr.io/acme/service"}})
    assert "image.repository" in str(error.value) and "not an ECR repository URL" in str(error.value)
    url = "210987654321.dkr.ecr.eu-west-1.amazonaws.com/team/service"
    assert parse_stack_config({"image": {"repository": url}}).image.repository == url
    parsed = parse_ecr_url(url)
    assert (parsed.registry_id, parsed.region, parsed.name) == ("210987654321", "eu-west-1", "team/service")


def test_an_external_ecr_repository_is_resolved_in_its_own_account_and_region() -> None:
    config = pulumi_config_of("dev")
    url = "210987654321.dkr.ecr.eu-west-1.amazonaws.com/team/service"
    config["django-eks:image"] = json.dumps({"repository": url, "tag": "0.1.0"})
    run = run_program(config, stack="dev")
    assert set(pod_images(run.resources).values()) == {f"{url}@{image_digest('team/service', '0.1.0')}"}


# --- the registry's lifecycle ------------------------------------------------------------


def test_the_lifecycle_policy_can_never_expire_an_image_a_stack_runs() -> None:
    # A stack runs the image its tag resolves to; tags are immutable, so that image stays
    # tagged. Every expiring rule selects untagged images only, and none counts tagged ones.
    rules = json.loads(lifecycle_policy())["rules"]
    assert rules
    for rule in rules:
        assert rule["action"]["type"] == "expire"
        assert rule["selection"]["tagStatus"] == "untagged", rule
    run = stack_run("dev")
    policy = run.named("aws:ecr/lifecyclePolicy:LifecyclePolicy", "service-lifecycle").inputs["policy"]
    assert json.loads(policy) == {"rules": rules}
    repo = run.named("aws:ecr/repository:Repository", "service").inputs
    assert repo["imageTagMutability"] == "IMMUTABLE"


# --- platforms -------------------------------------------------------------------------------


def test_image_platforms_follow_the_pools_that_run_it() -> None:
    assert image_platforms(small_config()) == ["linux/amd64"]
    graviton = small_config(
        nodePools={"default": {"instanceType": "m6g.large", "minSize": 1, "desiredSize": 1, "maxSize": 2}}
    )
    assert image_platforms(graviton) == ["linux/arm64"]
    mixed = split_pools_config(worker_max_replicas=4)
    assert image_platforms(mixed) == ["linux/amd64"]
    raw = mixed.model_dump(by_alias=True, exclude_none=True)
    raw["nodePools"]["workers"]["instanceType"] = "c6g.large"
    assert image_platforms(parse_stack_config(raw)) == ["linux/amd64", "linux/arm64"]


# --- python -m stack.tools.release ---------------------------------------------------------------


def test_the_preview_matrix_is_every_stack_file(tmp_path: Any, capsys: Any) -> None:
    from stack.tools.release.cli import main

    for name in ("dev", "prod", "exp-new-idea"):
        (tmp_path / f"Pulumi.{name}.yaml").write_text("config: {}\n")
    (tmp_path / "Pulumi.yaml").write_text("name: django-eks\n")
    assert main(["stacks"], root=tmp_path) == 0
    assert json.loads(capsys.readouterr().out) == ["dev", "exp-new-idea", "prod"]


def test_image_facts_name_the_platforms_region_and_emulated_architectures(capsys: Any) -> None:
    from stack.tools.release.cli import main

    assert main(["image", "--stack", "prod", "--runner-arch", "X64"]) == 0
    facts = dict(line.split("=", 1) for line in capsys.readouterr().out.splitlines())
    assert facts == {"platforms": "linux/amd64", "region": "us-east-1", "emulated": ""}
    assert main(["image", "--stack", "no-such-stack"]) == 2
    assert "no stack file Pulumi.no-such-stack.yaml" in capsys.readouterr().err


# --- a deploy's first step -------------------------------------------------------------------


def test_only_a_stack_without_its_registry_gets_the_platform_first(capsys: Any, tmp_path: Any) -> None:
    from stack.tools.release.bootstrap import needs_platform_first, platform_run, real_urn
    from stack.tools.release.cli import main

    platform = platform_run("dev")
    state = tmp_path / "state.json"
    # `pulumi stack export` of a stack just created by `pulumi stack select --create`.
    state.write_text(json.dumps({"version": 3, "deployment": {"manifest": {}}}))
    assert main(["bootstrap", "--stack", "dev", "--state", str(state)]) == 0
    assert capsys.readouterr().out == "platform_first=true\n"
    # A stack whose state has the registry (whatever else) skips it.
    existing = [real_urn(r.urn) for r in stack_run("dev").resources]
    state.write_text(json.dumps({"deployment": {"resources": [{"urn": u} for u in existing]}}))
    assert main(["bootstrap", "--stack", "dev", "--state", str(state)]) == 0
    assert capsys.readouterr().out == "platform_first=false\n"
    # A half-created platform (a first deploy that failed before the registry) retries it.
    half = [real_urn(r.urn) for r in platform.resources if r.type.startswith("aws:ec2/")]
    assert half and needs_platform_first(platform, half)


def test_the_platform_step_refuses_a_state_it_would_delete_from(capsys: Any, tmp_path: Any) -> None:
    from stack.tools.release.bootstrap import real_urn
    from stack.tools.release.cli import main

    # The app in the state without the registry: an update without image.tag would delete it.
    app = [real_urn(r.urn) for r in stack_run("dev").resources if "Workloads" in r.urn or "app-" in r.name]
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"deployment": {"resources": [{"urn": u} for u in app]}}))
    assert main(["bootstrap", "--stack", "dev", "--state", str(state)]) == 1
    error = capsys.readouterr().err
    assert "a deploy without image.tag would delete" in error and "Workloads" in error
