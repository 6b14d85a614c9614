"""Settings for a laptop (``make dev``) and for the test suite."""

from .base import *  # noqa: F403
from .base import SECRET_KEY

SECRET_KEY = SECRET_KEY or "django-insecure-local-development-only"
# The development server speaks plain HTTP.
SECURE_SSL_REDIRECT = False
