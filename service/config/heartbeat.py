"""The worker's liveness probe, as the demo's pods run it: ``python -m config.heartbeat --max-age 60``.

The runtime's check (django_eks_runtime/heartbeat.py) with the demo's settings module when the
environment names none.
"""

import os
import sys

from django_eks_runtime.heartbeat import main

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    sys.exit(main(prog="python -m config.heartbeat"))
