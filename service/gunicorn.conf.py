"""gunicorn's settings for the demo: the runtime's (django_eks_runtime/gunicorn_conf.py), read
from this file so that the web command line stays ``--config gunicorn.conf.py``. Run afresh
each time this file is (gunicorn reads it once per start), as the environment may differ."""

import runpy

globals().update(
    (name, value)
    for name, value in runpy.run_module("django_eks_runtime.gunicorn_conf").items()
    if not name.startswith("__")
)
