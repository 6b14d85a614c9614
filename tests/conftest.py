"""Session set-up for the service suite, done while pytest configures, before any collection.

When the service tests are selected, their PostgreSQL and Redis are settled here (the ones
named by SERVICE_TEST_DATABASE_URL / SERVICE_TEST_REDIS_URL, or throwaway instances started
now; see tests/service/throwaway_servers.py) and stopped when the session ends. A server
package that is not installed ends the run at once with one line saying what to install.
"""

import sys
from pathlib import Path

import pytest

SERVICE_TESTS = Path(__file__).resolve().parent / "service"


def _selects_service_tests(config: pytest.Config) -> bool:
    if config.option.help or config.option.version:
        return False
    for arg in config.args:
        path = (config.invocation_params.dir / arg.split("::", 1)[0]).resolve()
        if path == SERVICE_TESTS or path in SERVICE_TESTS.parents or SERVICE_TESTS in path.parents:
            return True
    return False


def pytest_configure(config: pytest.Config) -> None:
    if not _selects_service_tests(config):
        return
    # The folder the service tests import their helpers from (pytest adds it for their conftest).
    if str(SERVICE_TESTS) not in sys.path:
        sys.path.insert(0, str(SERVICE_TESTS))
    from throwaway_servers import MissingServerBinaries, suite_servers

    try:
        suite_servers()
    except MissingServerBinaries as error:
        raise pytest.UsageError(str(error)) from None


def pytest_unconfigure(config: pytest.Config) -> None:
    throwaway_servers = sys.modules.get("throwaway_servers")
    if throwaway_servers is not None:
        throwaway_servers.stop_suite_servers()
