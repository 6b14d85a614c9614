"""Settings read from the environment: production safety, Celery invariants, gunicorn defaults."""

import os
import runpy
import secrets
import ssl
import subprocess
import sys
from pathlib import Path

import pytest
from tls_postgres import tls_server  # noqa: F401  (fixture)

SERVICE_DIR = Path(__file__).resolve().parents[2] / "service"

# A real CA bundle standing in for the RDS one the image carries (service/Dockerfile).
CA_BUNDLE = ssl.get_default_verify_paths().cafile or ssl.get_default_verify_paths().openssl_cafile
PRODUCTION_ENV = {
    "DJANGO_SETTINGS_MODULE": "config.settings.production",
    "DATABASE_CA_BUNDLE": CA_BUNDLE,
    "DATABASE_URL": "postgres://app:pw@db.internal:5432/app?sslmode=require",
    "REDIS_URL": "rediss://:an-auth-token-0123456789@redis.internal:6379/0?ssl_cert_reqs=required",
    "DJANGO_ALLOWED_HOSTS": "api.example.com",
    "DJANGO_CSRF_TRUSTED_ORIGINS": "https://api.example.com",
    "AWS_STORAGE_BUCKET_NAME": "django-eks-prod-0123abcd",
    "AWS_S3_REGION_NAME": "eu-west-1",
    "JOBS_RETENTION_DAYS": "7",
}


def clean_env(**overrides: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "CELERY_", "JOBS_", "AWS_"))}
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    env["PYTHONPATH"] = str(SERVICE_DIR)
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=SERVICE_DIR, env=env, capture_output=True, text=True, timeout=60
    )


def settings_of(env: dict[str, str], expression: str) -> subprocess.CompletedProcess[str]:
    code = f"import importlib, os; s = importlib.import_module(os.environ['DJANGO_SETTINGS_MODULE']); print(repr(({expression},)))"
    return subprocess.run([sys.executable, "-c", code], cwd=SERVICE_DIR, env=env, capture_output=True, text=True,
                          timeout=60)


def test_production_passes_deploy_checks():
    env = clean_env(**PRODUCTION_ENV, DJANGO_SECRET_KEY=secrets.token_urlsafe(50))
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize("missing", ["DJANGO_SECRET_KEY", "DATABASE_URL", "REDIS_URL", "DJANGO_ALLOWED_HOSTS",
                                     "AWS_STORAGE_BUCKET_NAME"])
def test_production_refuses_to_start_without_required_variable(missing):
    env = clean_env(**{**PRODUCTION_ENV, "DJANGO_SECRET_KEY": secrets.token_urlsafe(50), missing: None})
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert missing in result.stderr


def test_production_refuses_local_files_saying_why():
    env = clean_env(**{**PRODUCTION_ENV, "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
                       "AWS_STORAGE_BUCKET_NAME": None})
    result = manage("check", env=env)
    assert result.returncode != 0
    assert ("production settings need AWS_STORAGE_BUCKET_NAME: uploads and results are shared by every web and "
            "worker pod through the bucket, not the local filesystem") in result.stderr


def test_files_go_to_the_named_bucket_with_overwrite_no_acl_and_short_presigned_urls():
    env = clean_env(**PRODUCTION_ENV, DJANGO_SECRET_KEY=secrets.token_urlsafe(50), JOBS_RESULT_URL_EXPIRY_SECONDS="120")
    expr = ("s.STORAGES['jobs']['BACKEND'], {k: v for k, v in s.STORAGES['jobs']['OPTIONS'].items() "
            "if k != 'client_config'}, s.JOBS_RETENTION_DAYS")
    result = settings_of(env, expr)
    assert result.returncode == 0, result.stderr
    backend, options, retention = eval(result.stdout)  # the repr of str, dict of plain values, int
    assert backend == "jobs.files.BucketStorage"
    assert options == {"bucket_name": "django-eks-prod-0123abcd", "region_name": "eu-west-1", "endpoint_url": None,
                       "file_overwrite": True, "default_acl": None, "querystring_auth": True,
                       "querystring_expire": 120}
    assert retention == 7


def test_without_a_bucket_files_go_to_a_local_directory(tmp_path):
    env = clean_env(DJANGO_SETTINGS_MODULE="config.settings.local", DJANGO_MEDIA_ROOT=str(tmp_path))
    result = settings_of(env, "s.STORAGES['jobs'], s.JOBS_RETENTION_DAYS, s.JOBS_RESULT_URL_EXPIRY_SECONDS")
    assert result.returncode == 0, result.stderr
    assert eval(result.stdout) == ({"BACKEND": "django.core.files.storage.FileSystemStorage",
                                       "OPTIONS": {"location": str(tmp_path), "allow_overwrite": True}}, 7, 300)


@pytest.mark.parametrize(("name", "value", "message"), [
    ("JOBS_RETENTION_DAYS", "0", "JOBS_RETENTION_DAYS must be at least 1, got 0"),
    ("JOBS_RESULT_URL_EXPIRY_SECONDS", "604801", "JOBS_RESULT_URL_EXPIRY_SECONDS must be between 1 and 604800"),
])
def test_bad_file_settings_are_refused(name, value, message):
    env = clean_env(DJANGO_SETTINGS_MODULE="config.settings.local", **{name: value})
    result = settings_of(env, "s.JOBS_RETENTION_DAYS")
    assert result.returncode != 0
    assert message in result.stderr


def test_production_verifies_the_database_certificate_against_the_bundle():
    # Even a URL asking for less (sslmode=require, as RDS URLs often do) gets verify-full.
    env = clean_env(**PRODUCTION_ENV, DJANGO_SECRET_KEY=secrets.token_urlsafe(50))
    result = settings_of(env, "s.DATABASES['default']['OPTIONS']")
    assert result.returncode == 0, result.stderr
    options = eval(result.stdout)[0]  # the repr of a dict of str
    assert options["sslmode"] == "verify-full"
    assert options["sslrootcert"] == CA_BUNDLE
    assert Path(options["sslrootcert"]).is_file()


def test_production_refuses_a_missing_database_ca_bundle(tmp_path):
    missing = str(tmp_path / "rds-global-bundle.pem")
    env = clean_env(**{**PRODUCTION_ENV, "DATABASE_CA_BUNDLE": missing}, DJANGO_SECRET_KEY=secrets.token_urlsafe(50))
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "DATABASE_CA_BUNDLE" in result.stderr and missing in result.stderr


def test_production_without_ssl_redirect_fails_deploy_checks():
    # The dev stack without a certificate sets this to false and knowingly gives up W008.
    env = clean_env(**PRODUCTION_ENV, DJANGO_SECRET_KEY=secrets.token_urlsafe(50), DJANGO_SECURE_SSL_REDIRECT="false")
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode != 0
    assert "security.W008" in result.stderr


def test_time_limit_must_be_below_visibility_timeout():
    env = clean_env(DJANGO_SETTINGS_MODULE="config.settings.local", CELERY_TASK_TIME_LIMIT="600",
                    CELERY_VISIBILITY_TIMEOUT="600")
    result = settings_of(env, "s.CELERY_TASK_TIME_LIMIT")
    assert result.returncode != 0
    assert "CELERY_TASK_TIME_LIMIT (600s) must be below CELERY_VISIBILITY_TIMEOUT (600s)" in result.stderr


def test_celery_settings_follow_the_environment():
    env = clean_env(DJANGO_SETTINGS_MODULE="config.settings.local", CELERY_TASK_TIME_LIMIT="120",
                    CELERY_VISIBILITY_TIMEOUT="300")
    expr = ("s.CELERY_TASK_TIME_LIMIT, s.CELERY_TASK_SOFT_TIME_LIMIT, s.CELERY_BROKER_TRANSPORT_OPTIONS['visibility_timeout'], "
            "s.CELERY_TASK_ACKS_LATE, s.CELERY_TASK_REJECT_ON_WORKER_LOST, s.CELERY_WORKER_PREFETCH_MULTIPLIER")
    result = settings_of(env, expr)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "(120, 108, 300, True, True, 1)"


def test_rediss_url_verifies_certificates_for_broker_backend_and_cache():
    env = clean_env(**PRODUCTION_ENV, DJANGO_SECRET_KEY=secrets.token_urlsafe(50))
    result = settings_of(env, "s.CELERY_BROKER_USE_SSL, s.CELERY_REDIS_BACKEND_USE_SSL, s.CACHES['default']['LOCATION']")
    assert result.returncode == 0, result.stderr
    required = {"ssl_cert_reqs": ssl.CERT_REQUIRED}
    assert result.stdout.strip() == repr((required, required, PRODUCTION_ENV["REDIS_URL"]))


def test_rediss_url_without_verification_is_refused():
    env = clean_env(**{**PRODUCTION_ENV, "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
                       "REDIS_URL": "rediss://:token@redis.internal:6379/0?ssl_cert_reqs=none"})
    result = settings_of(env, "s.CELERY_BROKER_USE_SSL")
    assert result.returncode != 0
    assert "ssl_cert_reqs=required" in result.stderr


def test_kombu_opens_a_verified_tls_connection_for_rediss():
    from kombu import Connection

    ssl_options = {"ssl_cert_reqs": ssl.CERT_REQUIRED}
    connection = Connection(PRODUCTION_ENV["REDIS_URL"], ssl=ssl_options)
    channel_cls = connection.transport.Channel
    channel = channel_cls.__new__(channel_cls)
    channel.connection = connection.transport
    channel.connection_class_ssl = channel_cls.connection_class_ssl
    params = channel_cls._connparams(channel)
    assert params["ssl_cert_reqs"] == ssl.CERT_REQUIRED
    assert params["connection_class"].__name__.endswith("SSLConnection")


def test_gunicorn_defaults(monkeypatch):
    for name in list(os.environ):
        if name.startswith("GUNICORN_"):
            monkeypatch.delenv(name)
    conf = runpy.run_path(str(SERVICE_DIR / "gunicorn.conf.py"))
    assert conf["worker_class"] == "gthread"  # the sync worker ignores keep-alive
    assert conf["worker_tmp_dir"] == "/dev/shm"
    assert conf["accesslog"] == "-"
    assert "cpu_count" not in (SERVICE_DIR / "gunicorn.conf.py").read_text().replace("cpu_count()", "")


def test_gunicorn_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("GUNICORN_WORKER_TMP_DIR", "/tmp")
    monkeypatch.setenv("GUNICORN_ACCESSLOG", "")
    conf = runpy.run_path(str(SERVICE_DIR / "gunicorn.conf.py"))
    assert (conf["worker_tmp_dir"], conf["accesslog"]) == ("/tmp", None)


# --- verify-full against a real TLS server --------------------------------------------------


def _connect_under_production(url: str, ca_file: str) -> subprocess.CompletedProcess[str]:
    env = clean_env(**{**PRODUCTION_ENV, "DATABASE_URL": url, "DATABASE_CA_BUNDLE": ca_file},
                    DJANGO_SECRET_KEY=secrets.token_urlsafe(50))
    code = (
        "import django; django.setup(); from django.db import connection; "
        "cursor = connection.cursor(); "
        "cursor.execute('SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()'); "
        "print(*cursor.fetchone())"
    )
    return subprocess.run([sys.executable, "-c", code], cwd=SERVICE_DIR, env=env, capture_output=True, text=True,
                          timeout=60)


def test_production_connects_over_verified_tls(tls_server):
    result = _connect_under_production(tls_server.url, str(tls_server.ca_file))
    assert result.returncode == 0, result.stderr[-2000:]
    ssl_in_use, tls_version = result.stdout.split()
    assert ssl_in_use == "True" and tls_version.startswith("TLSv1.")


def test_production_refuses_a_server_certificate_from_another_ca(tls_server):
    result = _connect_under_production(tls_server.url, str(tls_server.other_ca_file))
    assert result.returncode != 0
    assert "certificate verify failed" in result.stderr


def test_production_refuses_a_server_certificate_for_another_host(tmp_path):
    from tls_postgres import tls_postgres

    # A certificate from the trusted CA, but for another name: verify-full checks the host too.
    with tls_postgres(tmp_path, server_names="DNS:db.internal") as server:
        result = _connect_under_production(server.url, str(server.ca_file))
    assert result.returncode != 0
    assert "does not match host name" in result.stderr or "server certificate for" in result.stderr
