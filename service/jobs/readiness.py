"""The demo's own readiness check: its uploads and results storage (settings.PROBE_READINESS_CHECKS
adds it to the runtime's database and broker checks, django_eks_runtime/probes.py)."""

import threading
import time

FILES_CHECK_SECONDS = 10.0
"""How long a process reuses the outcome of its last bucket check: kubelet probes every web
process every few seconds, and each check is an S3 request. An outage or its end shows
within this many seconds."""

_files_checked: tuple[float, str, str | None] | None = None
_files_lock = threading.Lock()


def check_files() -> None:
    """The uploads and results storage answers: HeadBucket on S3, a writable directory locally.

    Fails naming the bucket, so a missing bucket or refused credentials keep the pod out of the
    Service instead of failing its first upload.
    """
    from jobs.files import FileStoreUnavailable, file_store_check, file_store_name

    global _files_checked
    store = file_store_name()
    # One check at a time per process; the others wait for it and share its outcome.
    with _files_lock:
        now = time.monotonic()
        if _files_checked is None or _files_checked[1] != store or now - _files_checked[0] >= FILES_CHECK_SECONDS:
            try:
                file_store_check()
            except FileStoreUnavailable as exc:
                _files_checked = (now, store, str(exc))
            else:
                _files_checked = (now, store, None)
        problem = _files_checked[2]
    if problem is not None:
        raise FileStoreUnavailable(problem)
