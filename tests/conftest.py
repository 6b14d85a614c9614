"""Session set-up: how many processes run the tests, and the service suite's servers.

A run of folders (``pytest``, the whole suite: ``make test``) is spread over WORKERS processes
by pytest-xdist (``-n auto`` in pyproject.toml): most of the suite's time is spent waiting
(real outages waited out, servers starting), so more processes than cores finish sooner. A run
of chosen files or tests stays in this one process, as does any run given ``-n N``.

When the service tests are selected, their PostgreSQL and Redis are settled while pytest
configures, before any collection (the ones named by SERVICE_TEST_DATABASE_URL /
SERVICE_TEST_REDIS_URL, or throwaway instances started now; see
tests/service/throwaway_servers.py) and stopped when the session ends: in each xdist worker,
its own. A server binary that cannot be found ends the run at once with one line saying what
to install.
"""

import os
import sys
from pathlib import Path

import pytest

SERVICE_TESTS = Path(__file__).resolve().parent / "service"
WORKERS = 4
"""Processes for a run of folders on the 2-core machine: the service tests wait more than they
compute. ``-n N`` on the command line, or PYTEST_XDIST_AUTO_NUM_WORKERS, overrides it."""


def _selects_service_tests(config: pytest.Config) -> bool:
    if config.option.help or config.option.version:
        return False
    for arg in config.args:
        path = (config.invocation_params.dir / arg.split("::", 1)[0]).resolve()
        if path == SERVICE_TESTS or path in SERVICE_TESTS.parents or SERVICE_TESTS in path.parents:
            return True
    return False


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None  # xdist's own reading of it
    paths = [(config.invocation_params.dir / arg.split("::", 1)[0]) for arg in config.args]
    return WORKERS if all(path.is_dir() for path in paths) else 0


_SERVICE_ENVIRONMENT = ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "REDIS_URL", "DJANGO_MEDIA_ROOT")
"""What tests/service/conftest.py sets for Django when it is imported."""


def _is_xdist_controller(config: pytest.Config) -> bool:
    """This process hands the tests to xdist workers and runs none itself."""
    return bool(getattr(config.option, "numprocesses", 0)) and not os.environ.get("PYTEST_XDIST_WORKER")


def pytest_configure(config: pytest.Config) -> None:
    if not _selects_service_tests(config):
        return
    # The folder the service tests import their helpers from (pytest adds it for their conftest).
    if str(SERVICE_TESTS) not in sys.path:
        sys.path.insert(0, str(SERVICE_TESTS))
    from throwaway_servers import MissingServerBinaries, check_server_binaries, stop_suite_servers, suite_servers

    try:
        if _is_xdist_controller(config):
            check_server_binaries()  # each worker starts its own
            # With tests/service on the command line its conftest was imported here, started
            # servers and pointed Django at them: the workers, spawned later with this
            # environment, would read those URLs before their own conftest replaced them.
            stop_suite_servers()
            for name in _SERVICE_ENVIRONMENT:
                os.environ.pop(name, None)
        else:
            suite_servers()
    except MissingServerBinaries as error:
        raise pytest.UsageError(str(error)) from None


def pytest_unconfigure(config: pytest.Config) -> None:
    throwaway_servers = sys.modules.get("throwaway_servers")
    if throwaway_servers is not None:
        throwaway_servers.stop_suite_servers()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Each phase's report on its test item (`item.rep_setup`, `rep_call`, `rep_teardown`): the
    fixtures that start processes print their logs when the test failed."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
