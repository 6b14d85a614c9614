"""A worker stopped with a task running (a rollout, a KEDA scale-in) loses no job, runs none
twice, uses up no attempt, and leaves within its soft-shutdown window. Real gunicorn, Celery,
PostgreSQL and Redis processes; the cases are those of ``python -m benchmarks stop``.

A short task ends within the window: the worker leaves when it ends. A long task runs past the
window: the worker hands it back at the window's end and leaves, and the other worker runs it.
"""

import pytest
from conftest import MEDIA_ROOT, TEST_REDIS_URL

from benchmarks.environment import Backends
from benchmarks.worker_stop import SCENARIOS, StopCase

WINDOW = 10
SHORT = 1.5
LONG = 24.0
# Production-like: a lease renewed while the job runs, the attempt limit as deployed.
ENV = {"JOBS_LEASE_SECONDS": "3", "JOBS_MAX_ATTEMPTS": "3", "CELERY_TASK_TIME_LIMIT": "60"}


@pytest.fixture
def stop_case(processes, tmp_path):
    from django.conf import settings

    db = settings.DATABASES["default"]
    # The web server and the workers share the test database, Redis, queue and files.
    shared = {**ENV, "CELERY_QUEUE": "jobs-stop", "DJANGO_MEDIA_ROOT": MEDIA_ROOT}
    _, url = processes.gunicorn(env=shared)
    backends = Backends(database_url=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
                        redis_url=TEST_REDIS_URL)
    case = StopCase(backends, url, tmp_path, env=shared)
    yield case
    case.stop()


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("task", ["short", "long"])
def test_a_stopped_worker_loses_no_job_runs_none_twice_and_leaves_within_its_window(stop_case, task, scenario):
    result = stop_case.run(scenario, task_seconds=SHORT if task == "short" else LONG, window=WINDOW)
    print(result.row())
    assert (result.lost, result.duplicated) == (0, 0), result
    # A handed-back delivery uses no attempt: each job is counted once, by the run that finished it.
    assert set(result.attempts) == {1}, result
    if task == "short":
        # Left when the task ended (then a warm shutdown's few seconds), not at the window's end.
        assert result.leave_seconds < WINDOW, result
    else:
        # Left at the window's end, long before the task's: bounded by the window, not the task.
        assert WINDOW <= result.leave_seconds < WINDOW + (LONG - WINDOW) / 2, result
