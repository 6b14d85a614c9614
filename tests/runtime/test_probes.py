"""/readyz's checks as an app names them (the PROBE_READINESS_CHECKS setting), and the app's health
path (APP_HEALTH_PATH, where the ALB checks) answered as /healthz is."""

import os
import subprocess
import sys

SETUP = ("import django, json; from django.conf import settings; "
         "settings.configure(PROBE_READINESS_CHECKS={checks!r}, REDIS_URL='redis://127.0.0.1:1/0', "
         "REDIS_SOCKET_TIMEOUT=0.5); django.setup(); from django_eks_runtime import probes; ")


def run(checks: dict[str, str], code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", SETUP.format(checks=checks) + code],
                          capture_output=True, text=True, timeout=60)


def test_readyz_answers_each_named_check_and_503_when_one_fails():
    done = run({"broker": "django_eks_runtime.probes.check_redis", "clock": "time.time"},
               "r = probes.readyz(); print(r.status_code, json.loads(r.content)['checks'])")
    assert done.returncode == 0, done.stderr
    status, _, checks = done.stdout.strip().partition(" ")
    assert status == "503"  # nothing listens on port 1
    assert "'clock': 'ok'" in checks and "'broker': 'unavailable: ConnectionError" in checks


def test_a_check_that_does_not_import_is_named_by_its_key():
    done = run({"queue": "nowhere.check"}, "probes.readiness_checks()")
    assert done.returncode != 0
    assert "PROBE_READINESS_CHECKS['queue']" in done.stderr


def test_the_apps_health_path_is_answered_before_django_as_healthz_is():
    # The ALB health-checks app.healthPath with the pod IP as Host: the middleware answers it
    # before ALLOWED_HOSTS, as it answers /healthz; other paths go on to the app.
    code = ("from django.test import RequestFactory; "
            "mw = probes.ProbeMiddleware(lambda r: (_ for _ in ()).throw(AssertionError(r.path))); "
            "rf = RequestFactory(); "
            "print(mw(rf.get('/health/live', HTTP_HOST='10.0.3.7')).status_code, "
            "mw(rf.get('/healthz', HTTP_HOST='10.0.3.7')).status_code); "
            "mw(rf.get('/elsewhere'))")
    done = subprocess.run([sys.executable, "-c", SETUP.format(checks={}) + code], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "APP_HEALTH_PATH": "/health/live"})
    assert done.stdout.strip() == "200 200", done.stderr
    assert "AssertionError: /elsewhere" in done.stderr
