"""The migration Job (stack/workloads/migration.py) runs once per image, and waits for its Pod Identity credentials without spending its retry.

EKS Pod Identity associations "are eventually consistent, and may take several seconds to be
effective after the API call returns successfully" (aws eks create-pod-identity-association,
https://docs.aws.amazon.com/cli/latest/reference/eks/create-pod-identity-association.html),
and EKS sets the credential variables only in pods created while the association is effective
("If a pod uses a service account that has an association, Amazon EKS sets environment
variables in the containers of the pod", CreatePodIdentityAssociation,
https://docs.aws.amazon.com/eks/latest/APIReference/API_CreatePodIdentityAssociation.html).
The Job comes right after its association, so its first pod can start without credentials.

Kubernetes' Job pod failure policy decides whether a failed pod counts against backoffLimit
(https://kubernetes.io/docs/concepts/workloads/controllers/job/#pod-failure-policy; the
controller's matching is kubernetes pkg/controller/job/pod_failure_policy.go): the rules are
tried in order and the first that matches applies; `onExitCodes` matches a terminated container
(init containers included) whose exit code is `In` the values, restricted to `containerName`
when set, exit code 0 never matching (API reference, PodFailurePolicyOnExitCodesRequirement:
"it lookups the .state.terminated.exitCode for each app container and init container status
... Containers completed with success (exit code 0) are excluded from the requirement check",
https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/job-v1/); `Ignore`
replaces the pod without incrementing the counter; a pod no rule matches counts. `podFailurePolicy` needs `restartPolicy: Never`, and `containerName` must name one of
the pod's containers or init containers (API validation, pkg/apis/batch/validation).
"""

from __future__ import annotations

from typing import Any

from config import pod_credentials
from stack.config.model import StackConfig
from stack.config.names import MIGRATE
from stack.workloads.migration import CREDENTIALS_NOT_INJECTED_EXIT_CODE, CREDENTIALS_TIMEOUT_SECONDS, WAIT_FOR_CREDENTIALS, migration_job_name
from tests.infra.support.manifests import IMAGE, find, launched, render


def test_migration_job_runs_once_per_image(stack_config: StackConfig) -> None:
    job = find(render(stack_config), "Job")
    assert job["metadata"]["name"] == migration_job_name(IMAGE)
    assert migration_job_name(IMAGE) == migration_job_name(IMAGE)
    assert migration_job_name(IMAGE) != migration_job_name(IMAGE.replace("0.1.0", "0.1.1"))
    assert len(job["metadata"]["name"]) <= 63
    spec = job["spec"]
    assert "ttlSecondsAfterFinished" not in spec
    assert 0 <= spec["backoffLimit"] <= 2
    assert spec["activeDeadlineSeconds"] > 0
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert launched(pod["containers"][0])[1:] == ["manage.py", "migrate", "--noinput"]
    assert pod["containers"][0]["image"] == IMAGE


def counts_against_backoff_limit(job_spec: dict[str, Any], terminated: dict[str, int]) -> bool:
    """Whether a failed pod whose containers exited with `terminated` (name -> code) counts."""
    pod = job_spec["template"]["spec"]
    names = {c["name"] for c in [*pod.get("initContainers", []), *pod["containers"]]}
    for rule in job_spec.get("podFailurePolicy", {}).get("rules", []):
        requirement = rule.get("onExitCodes")
        if requirement is None:
            continue
        assert pod["restartPolicy"] == "Never"
        container = requirement.get("containerName")
        assert container is None or container in names, f"{container} is no container of the pod"
        codes = [
            code for name, code in terminated.items() if code != 0 and (container is None or name == container)
        ]
        op = requirement["operator"]
        if any((code in requirement["values"]) == (op == "In") for code in codes):
            return bool(rule["action"] != "Ignore")
    return True


def migration(config: StackConfig) -> dict[str, Any]:
    return find(render(config), "Job")


def test_migrate_runs_only_after_the_credentials_wait(stack_config: StackConfig) -> None:
    pod = migration(stack_config)["spec"]["template"]["spec"]
    (wait,) = pod["initContainers"]
    assert wait["name"] == WAIT_FOR_CREDENTIALS
    assert wait["image"] == IMAGE == pod["containers"][0]["image"]
    assert launched(wait)[1:] == ["-m", "config.pod_credentials", "--timeout", str(CREDENTIALS_TIMEOUT_SECONDS)]
    # Same identity as migrate: the service account whose association it waits for.
    assert pod["serviceAccountName"] == MIGRATE
    assert wait["securityContext"] == pod["containers"][0]["securityContext"]


def test_a_pod_without_credentials_does_not_spend_the_retry(stack_config: StackConfig) -> None:
    spec = migration(stack_config)["spec"]
    # The exit code the init container's program uses for "no credentials yet".
    assert CREDENTIALS_NOT_INJECTED_EXIT_CODE == pod_credentials.NOT_INJECTED
    assert not counts_against_backoff_limit(spec, {WAIT_FOR_CREDENTIALS: pod_credentials.NOT_INJECTED})
    # Anything else still counts: a crash of the wait, and every failure of the migration.
    assert counts_against_backoff_limit(spec, {WAIT_FOR_CREDENTIALS: 1})
    assert counts_against_backoff_limit(spec, {WAIT_FOR_CREDENTIALS: 0, MIGRATE: 1})
    assert counts_against_backoff_limit(spec, {WAIT_FOR_CREDENTIALS: 0, MIGRATE: pod_credentials.NOT_INJECTED})
    # Retries without credentials are bounded by the Job's deadline, which Pulumi outwaits.
    assert spec["activeDeadlineSeconds"] > CREDENTIALS_TIMEOUT_SECONDS


def test_the_wait_fits_in_the_migration_pods_resources(stack_config: StackConfig) -> None:
    """An init container's requests count on their own (the pod's request is the larger of the
    biggest init container and the sum of the app containers): it must not ask for more."""
    pod = migration(stack_config)["spec"]["template"]["spec"]
    wait, migrate = pod["initContainers"][0]["resources"], pod["containers"][0]["resources"]
    assert int(wait["requests"]["cpu"].rstrip("m")) <= int(migrate["requests"]["cpu"].rstrip("m"))
    assert int(wait["requests"]["memory"].rstrip("Mi")) <= int(migrate["requests"]["memory"].rstrip("Mi"))
