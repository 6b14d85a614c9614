"""Run ``celery`` with every compression slowed down, so tests can interrupt a job mid-run.

    python slow_worker.py --app config worker ...   (same arguments as ``celery``)

The delay (``SLOW_JOB_SECONDS``) is patched in before the pool forks, so the
child processes inherit it. The service code itself has no test hooks.
"""

import os
import sys
import time

import jobs.imaging

_recompress = jobs.imaging.image_recompress


def slow_recompress(**kwargs):
    time.sleep(float(os.environ["SLOW_JOB_SECONDS"]))
    return _recompress(**kwargs)


jobs.imaging.image_recompress = slow_recompress

if __name__ == "__main__":
    from celery.bin.celery import main

    sys.argv[0] = "celery"
    sys.exit(main())
