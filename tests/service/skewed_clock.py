"""Run a Python script with this process's clock some seconds off, as on a pod whose clock drifted.

    python skewed_clock.py SECONDS script.py [args...]

``time.time`` and ``datetime.datetime.now``/``utcnow`` (which ``django.utils.timezone.now``
calls) are shifted before the script imports anything; the database's clock is not.
"""

import datetime
import runpy
import sys
import time

offset = float(sys.argv[1])
_time = time.time
time.time = lambda: _time() + offset
_shift = datetime.timedelta(seconds=offset)


class SkewedDatetime(datetime.datetime):
    @classmethod
    def now(cls, tz=None):
        return super().now(tz) + _shift

    @classmethod
    def utcnow(cls):
        return super().utcnow() + _shift


datetime.datetime = SkewedDatetime  # type: ignore[misc]

if __name__ == "__main__":
    sys.argv = sys.argv[2:]
    runpy.run_path(sys.argv[0], run_name="__main__")
