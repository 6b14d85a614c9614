"""Settings for the cluster: no secret defaults, HTTPS behind the ALB."""

import os

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import DATABASES, DEBUG, ENV_DEFAULTED, _env

_REQUIRED = ("DJANGO_SECRET_KEY", "DATABASE_URL", "REDIS_URL", "DJANGO_ALLOWED_HOSTS")
_missing = [name for name in _REQUIRED if name in ENV_DEFAULTED]
if _missing:
    raise ImproperlyConfigured(f"production settings need these environment variables: {', '.join(_missing)}")
if DEBUG:
    raise ImproperlyConfigured("DJANGO_DEBUG must be false in production")
if "AWS_STORAGE_BUCKET_NAME" in ENV_DEFAULTED:
    # Local files would be seen only by the pod that wrote them: a worker could not read the
    # upload a web pod stored, nor a web pod serve the worker's result.
    raise ImproperlyConfigured(
        "production settings need AWS_STORAGE_BUCKET_NAME: uploads and results are shared by every "
        "web and worker pod through the bucket, not the local filesystem"
    )

# PostgreSQL: TLS that verifies the server's certificate and host name, against the RDS CA
# bundle the image carries (service/Dockerfile), whatever sslmode the URL names.
DATABASE_CA_BUNDLE = _env("DATABASE_CA_BUNDLE", "/etc/ssl/certs/rds-global-bundle.pem")
if not os.path.isfile(DATABASE_CA_BUNDLE):
    raise ImproperlyConfigured(
        f"DATABASE_CA_BUNDLE {DATABASE_CA_BUNDLE!r} is not a file: production verifies "
        "PostgreSQL's certificate (sslmode=verify-full) against this CA bundle"
    )
DATABASES["default"].setdefault("OPTIONS", {}).update(sslmode="verify-full", sslrootcert=DATABASE_CA_BUNDLE)

# The ALB terminates TLS and tells us the original scheme.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_HSTS_SECONDS = 31_536_000
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
