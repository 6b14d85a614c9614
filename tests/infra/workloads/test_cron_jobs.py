"""The stack's cronJobs (stack/workloads/cron_jobs.py): one CronJob each, one run at a time, the
management command through `python -m django`, with the workers' identity and egress."""

from __future__ import annotations

from stack.config.names import CRON, WORKER
from stack.config.rules import parse_stack_config
from stack.workloads.pods import selector_labels
from tests.infra.support.manifests import find, render
from tests.infra.support.stack_files import project_config


def test_each_cron_job_runs_its_command_on_its_schedule_one_run_at_a_time() -> None:
    raw = {
        **project_config("dev"),
        "cronJobs": {
            "sessions": {"schedule": "17 3 * * *", "command": ["clearsessions"]},
            "report": {"schedule": "@hourly", "command": ["send_report", "--since", "1h"], "deadlineSeconds": 900},
        },
    }
    manifests = render(parse_stack_config(raw))
    for name, schedule, command, deadline in (
        ("cron-sessions", "17 3 * * *", ["clearsessions"], 600),
        ("cron-report", "@hourly", ["send_report", "--since", "1h"], 900),
    ):
        spec = find(manifests, "CronJob", name)["spec"]
        assert (spec["schedule"], spec["timeZone"]) == (schedule, "Etc/UTC")
        assert spec["concurrencyPolicy"] == "Forbid"
        job = spec["jobTemplate"]["spec"]
        assert (job["backoffLimit"], job["activeDeadlineSeconds"]) == (0, deadline)
        pod = job["template"]["spec"]
        assert pod["containers"][0]["command"] == ["python", "-m", "django", *command]
        assert pod["restartPolicy"] == "Never"
        # The workers' account (and Pod Identity role); the component's own egress policy.
        assert pod["serviceAccountName"] == WORKER
        assert job["template"]["metadata"]["labels"].items() >= selector_labels(CRON).items()
    policy = find(manifests, "NetworkPolicy", f"{CRON}-egress")["spec"]
    worker_policy = find(manifests, "NetworkPolicy", f"{WORKER}-egress")["spec"]
    assert policy["egress"] == worker_policy["egress"]


def test_without_cron_jobs_no_policy_of_theirs() -> None:
    manifests = render(parse_stack_config(project_config("dev")))
    assert not [o for o in manifests if o["metadata"]["name"].startswith(f"{CRON}-")]
